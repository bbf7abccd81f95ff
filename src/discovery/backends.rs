//! One function per backend: a target's client and instancer, with the options'
//! credentials; each is an error naming the feature when its backend is left out.

#![allow(unused_imports)] // some builds leave every backend out

use crate::discovery::{DiscoveryOptions, Target, left_out};
use crate::{Instance, Instancer, Registrar, Result};

#[cfg(feature = "consul")]
fn consul_client(target: &Target, options: &DiscoveryOptions) -> Result<crate::consul::HttpClient> {
    let Target::Consul {
        addresses,
        datacenter,
        ..
    } = target
    else {
        unreachable!("a Consul target");
    };
    let mut client = crate::consul::HttpClient::builder().addresses(addresses.iter().cloned());
    if let Some(token) = &options.consul_token {
        client = client.token(token.clone());
    }
    if let Some(dc) = datacenter {
        client = client.datacenter(dc.clone());
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &options.tls {
        client = client.tls(tls.clone());
    }
    client.build()
}

#[cfg(feature = "consul")]
pub(super) fn consul(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let Target::Consul {
        service,
        tags,
        passing,
        ..
    } = target
    else {
        unreachable!("a Consul target");
    };
    let client = consul_client(target, options)?;
    let instancer = crate::consul::Instancer::builder(&client, service.clone())
        .tags(tags.iter().cloned())
        .include_warning(!passing)
        .build()?;
    Ok(Box::new(instancer))
}

#[cfg(feature = "consul")]
pub(super) fn consul_registrar(
    target: &Target,
    instance: &Instance,
    options: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    let Target::Consul { service, .. } = target else {
        unreachable!("a Consul target");
    };
    let client = consul_client(target, options)?;
    let (host, port) = host_port(instance)?;
    let mut builder = crate::consul::Registrar::builder(&client, service.clone(), host, port);
    if let Some(metadata) = instance.metadata() {
        for tag in metadata.tags() {
            builder = builder.tag(tag);
        }
        for (key, value) in metadata.values() {
            builder = builder.meta(key, value);
        }
    }
    Ok(Box::new(builder.build()?))
}

#[cfg(not(feature = "consul"))]
pub(super) fn consul(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}

#[cfg(not(feature = "consul"))]
pub(super) fn consul_registrar(
    target: &Target,
    _: &Instance,
    _: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    Err(left_out(target))
}

#[cfg(feature = "etcd")]
fn etcd_client(target: &Target, options: &DiscoveryOptions) -> Result<crate::etcd::HttpClient> {
    let Target::Etcd { endpoints, .. } = target else {
        unreachable!("an etcd target");
    };
    let mut client = crate::etcd::HttpClient::builder().addresses(endpoints.iter().cloned());
    if let Some((user, password)) = &options.etcd_user {
        client = client.user(user.clone(), password.clone());
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &options.tls {
        client = client.tls(tls.clone());
    }
    client.build()
}

#[cfg(feature = "etcd")]
pub(super) fn etcd(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let Target::Etcd { prefix, .. } = target else {
        unreachable!("an etcd target");
    };
    let client = etcd_client(target, options)?;
    let instancer = crate::etcd::Instancer::builder(&client, prefix.clone()).build()?;
    Ok(Box::new(instancer))
}

#[cfg(feature = "etcd")]
pub(super) fn etcd_registrar(
    target: &Target,
    instance: &Instance,
    options: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    let Target::Etcd { prefix, .. } = target else {
        unreachable!("an etcd target");
    };
    let client = etcd_client(target, options)?;
    let registrar = crate::etcd::Registrar::builder(&client, prefix.clone(), instance.addr());
    Ok(Box::new(registrar.build()?))
}

#[cfg(not(feature = "etcd"))]
pub(super) fn etcd(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}

#[cfg(not(feature = "etcd"))]
pub(super) fn etcd_registrar(
    target: &Target,
    _: &Instance,
    _: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    Err(left_out(target))
}

/// A ZooKeeper target's client, path and layout.
#[cfg(feature = "zk")]
fn zk_parts(
    target: &Target,
    options: &DiscoveryOptions,
) -> Result<(crate::zk::Client, String, crate::zk::Layout)> {
    let Target::Zk {
        servers,
        path,
        curator,
    } = target
    else {
        unreachable!("a ZooKeeper target");
    };
    let mut client = crate::zk::Client::builder(&servers.join(","));
    if let Some((user, password)) = &options.zk_digest {
        client = client.digest(user, password);
    }
    let layout = match curator {
        true => crate::zk::Layout::Curator,
        false => crate::zk::Layout::Plain,
    };
    Ok((client.build()?, path.clone(), layout))
}

#[cfg(feature = "zk")]
pub(super) fn zk(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let (client, path, layout) = zk_parts(target, options)?;
    let instancer = crate::zk::Instancer::builder(&client, path)
        .layout(layout)
        .build()?;
    Ok(Box::new(instancer))
}

#[cfg(feature = "zk")]
pub(super) fn zk_registrar(
    target: &Target,
    instance: &Instance,
    options: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    let (client, path, layout) = zk_parts(target, options)?;
    let registrar = crate::zk::Registrar::builder(&client, path, instance.addr())
        .layout(layout)
        .build()?;
    Ok(Box::new(registrar))
}

#[cfg(not(feature = "zk"))]
pub(super) fn zk(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}

#[cfg(not(feature = "zk"))]
pub(super) fn zk_registrar(
    target: &Target,
    _: &Instance,
    _: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    Err(left_out(target))
}

#[cfg(feature = "dnssrv")]
pub(super) fn dns(target: &Target) -> Result<Box<dyn Instancer>> {
    use crate::dnssrv::{Client, Instancer};
    let (builder, server) = match target {
        Target::DnsSrv { server, name } => (Instancer::srv(name.clone()), server),
        Target::DnsHost { server, host, port } => {
            (Instancer::host(&format!("{host}:{port}")), server)
        }
        _ => unreachable!("a DNS target"),
    };
    let builder = match server {
        None => builder,
        Some(server) => {
            let addr = server.parse().map_err(|_| {
                crate::Error::invalid_config(
                    "url host",
                    format!("a DNS server is an IP address and port, not {server:?}"),
                )
            })?;
            builder.resolver(Client::builder().server(addr).build()?)
        }
    };
    Ok(Box::new(builder.build()?))
}

#[cfg(not(feature = "dnssrv"))]
pub(super) fn dns(target: &Target) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}

#[cfg(feature = "eureka")]
fn eureka_client(target: &Target, options: &DiscoveryOptions) -> Result<crate::eureka::HttpClient> {
    let Target::Eureka { service_urls, .. } = target else {
        unreachable!("a Eureka target");
    };
    let mut client = crate::eureka::HttpClient::builder().servers(service_urls.iter().cloned());
    if let Some((user, password)) = &options.eureka_basic_auth {
        client = client.basic_auth(user.clone(), password.clone());
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = &options.tls {
        client = client.tls(tls.clone());
    }
    client.build()
}

#[cfg(feature = "eureka")]
pub(super) fn eureka(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let Target::Eureka { app, .. } = target else {
        unreachable!("a Eureka target");
    };
    let client = eureka_client(target, options)?;
    Ok(Box::new(
        crate::eureka::Instancer::app(&client, app).build()?,
    ))
}

#[cfg(feature = "eureka")]
pub(super) fn eureka_registrar(
    target: &Target,
    instance: &Instance,
    options: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    let Target::Eureka { app, .. } = target else {
        unreachable!("a Eureka target");
    };
    let client = eureka_client(target, options)?;
    let registrar = crate::eureka::Registrar::builder(&client, app, instance.addr()).build()?;
    Ok(Box::new(registrar))
}

#[cfg(not(feature = "eureka"))]
pub(super) fn eureka(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}

#[cfg(not(feature = "eureka"))]
pub(super) fn eureka_registrar(
    target: &Target,
    _: &Instance,
    _: &DiscoveryOptions,
) -> Result<Box<dyn Registrar>> {
    Err(left_out(target))
}

/// The instance's host and port, for a registrar that takes them apart.
#[allow(dead_code)]
fn host_port(instance: &Instance) -> Result<(String, u16)> {
    match (instance.host(), instance.port()) {
        (Some(host), Some(port)) => Ok((host.trim_matches(['[', ']']).to_owned(), port)),
        _ => Err(crate::Error::invalid_config(
            "instance",
            format!("{:?} is not host:port", instance.addr()),
        )),
    }
}
