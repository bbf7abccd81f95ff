// Drives eureka-js-client (4.5.0) for the Eureka double's tests
// (tests/support/eureka_clients.rs). Argument 1 is the folder holding its
// node_modules, argument 2 a JSON config:
//   {"url": "http://127.0.0.1:P/eureka", "app": "demo-svc", "id": "demo-1", "port": 8080,
//    "heartbeat_ms": 300, "fetch_ms": 300, "delta": false}
// Prints one JSON line per event on stdout:
//   {"event":"registered"} {"event":"heartbeat"} {"event":"started"}
//   {"event":"fetched","instances":[{"app","id","host","port","status"}...]}
//   {"event":"lookup","app":"X","instances":[...]}
//   {"event":"error","what":"...","message":"..."}  (the client's warnings and errors)
//   {"event":"stopped"} then exit
// Commands on stdin, one a line: "lookup APP", "stop". End of stdin stops too.
'use strict';

const path = require('path');
const readline = require('readline');

const { Eureka } = require(path.join(process.argv[2], 'node_modules', 'eureka-js-client'));
const config = JSON.parse(process.argv[3]);

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields)) + '\n');
}

function describe(args) {
  return args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
}

// The client's logger: warnings and errors become events, the rest is dropped.
const logger = {
  level() { return 'warn'; },
  debug() {}, info() {},
  warn(...args) { emit('error', { what: 'warn', message: describe(args) }); },
  error(...args) { emit('error', { what: 'error', message: describe(args) }); },
};

const url = new URL(config.url);
const client = new Eureka({
  logger,
  shouldUseDelta: !!config.delta,
  instance: {
    app: config.app,
    instanceId: config.id,
    hostName: '127.0.0.1',
    ipAddr: '127.0.0.1',
    port: { $: config.port, '@enabled': true },
    vipAddress: config.app,
    statusPageUrl: `http://127.0.0.1:${config.port}/info`,
    dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
  },
  eureka: {
    host: url.hostname,
    port: Number(url.port),
    servicePath: url.pathname.replace(/\/$/, '') + '/apps/',
    heartbeatInterval: config.heartbeat_ms,
    registryFetchInterval: config.fetch_ms,
    maxRetries: 0,
  },
});

function view(instances) {
  return instances.map((i) => ({ app: i.app, id: i.instanceId, host: i.hostName, port: i.port && i.port.$, status: i.status }));
}

function everything() {
  return Object.keys(client.cache.app).sort().flatMap((app) => view(client.cache.app[app]));
}

// Every fetch (full or delta) ends in fetchRegistry's callback.
const fetchRegistry = client.fetchRegistry.bind(client);
client.fetchRegistry = (callback) => fetchRegistry((err) => {
  if (err) emit('error', { what: 'fetch', message: describe([err]) });
  else emit('fetched', { instances: everything() });
  if (callback) callback(err);
});
client.on('registered', () => emit('registered'));
client.on('heartbeat', () => emit('heartbeat'));

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  client.stop((err) => {
    if (err) emit('error', { what: 'stop', message: describe([err]) });
    emit('stopped');
    process.exit(0);
  });
}

client.start((err) => {
  if (err) emit('error', { what: 'start', message: describe([err]) });
  else emit('started');
});

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [command, arg] = line.trim().split(/\s+/);
  if (command === 'lookup') {
    emit('lookup', { app: arg, instances: view(client.getInstancesByAppId(arg)) });
  } else if (command === 'stop') {
    stop();
  } else {
    emit('error', { what: 'command', message: `unknown command ${line}` });
  }
});
lines.on('close', stop);
