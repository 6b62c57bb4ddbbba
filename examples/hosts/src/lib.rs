//! The provision example across several hosts, over NATS JetStream: the
//! program is `examples/provision_hosts.rs` (`cargo run --example
//! provision_hosts`), and `run` beside this package's manifest starts a
//! server, a worker per host and the coordinator on one machine. The jobs
//! are the provision example's (`dojobber-example-provision`); this
//! package only adds the NATS client, so that the single-host example
//! builds without it.
