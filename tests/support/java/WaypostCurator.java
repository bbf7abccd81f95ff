// A Curator service-discovery client for waypost's interop tests, compiled at test time
// by tests/support/curator.rs against the installed Curator jars.
//
//   WaypostCurator CONNECT BASE register NAME ID ADDRESS PORT [JSON]
//       registers through ServiceDiscovery, prints "registered ID", and stays
//       registered until stdin closes; then unregisters, closes and exits 0.
//       JSON is "compat" (the default: Curator's default serializer, which writes no
//       "enabled" field), "enabled" or "disabled" (the full serializer, which writes
//       "enabled": true or false).
//   WaypostCurator CONNECT BASE query NAME
//       ServiceDiscovery.queryForInstances(NAME): every instance, enabled or not; one
//       child that is not Curator's JSON fails the whole query.
//   WaypostCurator CONNECT BASE provider NAME
//       a ServiceProvider's getAllInstances(): the instances Curator hands out (enabled
//       ones; children that are not Curator's JSON are left out).
//
// query and provider print one line per instance, "instance ID ADDRESS PORT ENABLED",
// sorted by id, then "done". A failure exits non-zero with its cause on stderr.

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;

public final class WaypostCurator {
    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            fail("usage: CONNECT BASE register|query|provider NAME ...");
        }
        String connect = args[0], base = args[1], command = args[2], name = args[3];
        String json = command.equals("register") && args.length > 7 ? args[7] : "compat";
        if (!List.of("compat", "enabled", "disabled").contains(json)) {
            fail("JSON must be compat, enabled or disabled, not " + json);
        }
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(10_000)
                .connectionTimeoutMs(5_000)
                .retryPolicy(new RetryNTimes(10, 200))
                .build();
        client.start();
        if (!client.blockUntilConnected(10, TimeUnit.SECONDS)) {
            fail("not connected to " + connect + " within 10 s");
        }
        ServiceDiscoveryBuilder<Void> builder = ServiceDiscoveryBuilder.builder(Void.class)
                .client(client)
                .basePath(base);
        if (!json.equals("compat")) {
            // compatibleSerializationMode = false: the format with "enabled".
            builder.serializer(new JsonInstanceSerializer<>(Void.class, false));
        }
        ServiceDiscovery<Void> discovery = builder.build();
        discovery.start();
        switch (command) {
            case "register": {
                if (args.length < 7) {
                    fail("register NAME ID ADDRESS PORT [compat|enabled|disabled]");
                }
                ServiceInstance<Void> instance = ServiceInstance.<Void>builder()
                        .name(name)
                        .id(args[4])
                        .address(args[5])
                        .port(Integer.parseInt(args[6]))
                        .enabled(!json.equals("disabled"))
                        .build();
                discovery.registerService(instance);
                System.out.println("registered " + instance.getId());
                System.out.flush();
                while (System.in.read() != -1) {
                    // registered until stdin closes
                }
                discovery.unregisterService(instance);
                break;
            }
            case "query":
                print(discovery.queryForInstances(name));
                break;
            case "provider": {
                ServiceProvider<Void> provider = discovery.serviceProviderBuilder()
                        .serviceName(name)
                        .build();
                provider.start();
                print(provider.getAllInstances());
                provider.close();
                break;
            }
            default:
                fail("unknown command " + command);
        }
        discovery.close();
        client.close();
    }

    private static void print(Collection<ServiceInstance<Void>> instances) {
        List<ServiceInstance<Void>> sorted = new ArrayList<>(instances);
        sorted.sort(Comparator.comparing(ServiceInstance::getId));
        for (ServiceInstance<Void> i : sorted) {
            System.out.println("instance " + i.getId() + " " + i.getAddress() + " "
                    + i.getPort() + " " + i.isEnabled());
        }
        System.out.println("done");
    }

    private static void fail(String why) {
        System.err.println(why);
        System.exit(2);
    }
}
