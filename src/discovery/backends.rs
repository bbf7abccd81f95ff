//! One function per backend: a target's client and instancer, with the options'
//! credentials; each is an error naming the feature when its backend is left out.

#![allow(unused_imports)] // some builds leave every backend out

use crate::discovery::{DiscoveryOptions, Target, left_out};
use crate::{Instancer, Result};

#[cfg(feature = "consul")]
pub(super) fn consul(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let Target::Consul {
        addresses,
        service,
        tags,
        passing,
        datacenter,
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
    let client = client.build()?;
    let instancer = crate::consul::Instancer::builder(&client, service.clone())
        .tags(tags.iter().cloned())
        .include_warning(!passing)
        .build()?;
    Ok(Box::new(instancer))
}

#[cfg(not(feature = "consul"))]
pub(super) fn consul(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}

#[cfg(feature = "etcd")]
pub(super) fn etcd(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let Target::Etcd { endpoints, prefix } = target else {
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
    let client = client.build()?;
    let instancer = crate::etcd::Instancer::builder(&client, prefix.clone()).build()?;
    Ok(Box::new(instancer))
}

#[cfg(not(feature = "etcd"))]
pub(super) fn etcd(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}

#[cfg(feature = "zk")]
pub(super) fn zk(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
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
    let client = client.build()?;
    let layout = match curator {
        true => crate::zk::Layout::Curator,
        false => crate::zk::Layout::Plain,
    };
    let instancer = crate::zk::Instancer::builder(&client, path.clone())
        .layout(layout)
        .build()?;
    Ok(Box::new(instancer))
}

#[cfg(not(feature = "zk"))]
pub(super) fn zk(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
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
pub(super) fn eureka(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let Target::Eureka { service_urls, app } = target else {
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
    let client = client.build()?;
    Ok(Box::new(
        crate::eureka::Instancer::app(&client, app).build()?,
    ))
}

#[cfg(not(feature = "eureka"))]
pub(super) fn eureka(target: &Target, _: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    Err(left_out(target))
}
