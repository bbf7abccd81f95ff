//! One function per backend: a target's client and instancer, with the options'
//! credentials; each is an error naming the feature when its backend is left out
//! (the `without_backend!` list at the end).

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
        if let Some(weight) = metadata.weight() {
            builder = builder.weights(weight, weight);
        }
    }
    if let Some(ttl) = options.ttl {
        builder = builder.ttl(ttl);
    }
    Ok(Box::new(builder.build()?))
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
    let mut registrar = crate::etcd::Registrar::builder(&client, prefix.clone(), instance.addr());
    if let Some(metadata) = instance.metadata() {
        if let Some(weight) = metadata.weight() {
            registrar = registrar.weight(weight);
        }
        if let Some(zone) = metadata.zone() {
            registrar = registrar.zone(zone);
        }
        if let Some(scheme) = metadata.scheme() {
            registrar = registrar.scheme(scheme);
        }
        for tag in metadata.tags() {
            registrar = registrar.tag(tag);
        }
        for (key, value) in metadata.values() {
            registrar = registrar.value(key, value);
        }
    }
    if let Some(ttl) = options.ttl {
        registrar = registrar.ttl(ttl);
    }
    Ok(Box::new(registrar.build()?))
}

/// A ZooKeeper target's client, path and layout.
#[cfg(feature = "zk")]
fn zk_parts(
    target: &Target,
    options: &DiscoveryOptions,
    session_timeout: Option<std::time::Duration>,
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
    if let Some(timeout) = session_timeout {
        if timeout.is_zero() {
            return Err(crate::Error::invalid_config(
                "ttl",
                "a ZooKeeper session timeout is more than zero",
            ));
        }
        client = client.session_timeout(timeout);
    }
    let layout = match curator {
        true => crate::zk::Layout::Curator,
        false => crate::zk::Layout::Plain,
    };
    Ok((client.build()?, path.clone(), layout))
}

#[cfg(feature = "zk")]
pub(super) fn zk(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
    let (client, path, layout) = zk_parts(target, options, None)?;
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
    let (client, path, layout) = zk_parts(target, options, options.ttl)?;
    let registrar = crate::zk::Registrar::builder(&client, path, instance.addr())
        .layout(layout)
        .build()?;
    Ok(Box::new(registrar))
}

#[cfg(feature = "dnssrv")]
pub(super) fn dns(target: &Target, options: &DiscoveryOptions) -> Result<Box<dyn Instancer>> {
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
    let builder = match options.poll_interval {
        Some(interval) => builder.interval(interval),
        None => builder,
    };
    Ok(Box::new(builder.build()?))
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
    let mut instancer = crate::eureka::Instancer::app(&client, app);
    if let Some(interval) = options.poll_interval {
        instancer = instancer.interval(interval);
    }
    Ok(Box::new(instancer.build()?))
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
    let mut registrar = crate::eureka::Registrar::builder(&client, app, instance.addr());
    if let Some(metadata) = instance.metadata() {
        for (key, value) in metadata.values() {
            registrar = registrar.metadata(key, value);
        }
        if let Some(weight) = metadata.weight() {
            registrar = registrar.metadata("weight", weight.to_string());
        }
        if let Some(zone) = metadata.zone() {
            registrar = registrar.metadata("zone", zone);
        }
    }
    if let Some(ttl) = options.ttl {
        // Renewed every third of the lease, at least a second apart.
        if ttl < std::time::Duration::from_secs(3) {
            return Err(crate::Error::invalid_config(
                "ttl",
                format!("a Eureka lease is at least 3 s (renewed every third of it), not {ttl:?}"),
            ));
        }
        registrar = registrar.lease_duration(ttl).renewal_interval(ttl / 3);
    }
    Ok(Box::new(registrar.build()?))
}

/// The functions of the backends this build leaves out: each is the error naming the
/// feature to turn on (see `left_out`).
macro_rules! without_backend {
    ($($feature:literal => $(fn $name:ident($($arg:ty),*) -> $made:ty;)+)+) => {$($(
        #[cfg(not(feature = $feature))]
        pub(super) fn $name(target: &Target, $(_: $arg),*) -> Result<$made> {
            Err(left_out(target))
        }
    )+)+};
}

without_backend! {
    "consul" =>
        fn consul(&DiscoveryOptions) -> Box<dyn Instancer>;
        fn consul_registrar(&Instance, &DiscoveryOptions) -> Box<dyn Registrar>;
    "etcd" =>
        fn etcd(&DiscoveryOptions) -> Box<dyn Instancer>;
        fn etcd_registrar(&Instance, &DiscoveryOptions) -> Box<dyn Registrar>;
    "zk" =>
        fn zk(&DiscoveryOptions) -> Box<dyn Instancer>;
        fn zk_registrar(&Instance, &DiscoveryOptions) -> Box<dyn Registrar>;
    "dnssrv" =>
        fn dns(&DiscoveryOptions) -> Box<dyn Instancer>;
    "eureka" =>
        fn eureka(&DiscoveryOptions) -> Box<dyn Instancer>;
        fn eureka_registrar(&Instance, &DiscoveryOptions) -> Box<dyn Registrar>;
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
