//! The binder within one process: names, typed lookups, lookups by interface, access rules,
//! limits and leases. Separate processes are in `tests/tests/binder_process.rs` and `cli.rs`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rmi_runtime::binder::{Access, BINDER_OBJECT, BinderClient, BinderConfig, BinderService, Naming};
use rmi_runtime::{Address, BinderError, Endpoint, Error, InterfaceId, Secret, Stub, Versions, remote};

/// Says hello, and who it is.
#[remote]
pub trait Greeter {
    /// A greeting from this greeter.
    async fn greet(&self) -> String;
}

/// A counter.
#[remote]
pub trait Counter {
    /// Adds one and returns the count.
    async fn next(&self) -> u32;
}

/// Version 2 of `Greeter`: a client of it must never be handed a version 1 greeter.
pub mod v2 {
    use super::remote;

    /// Says hello in a language.
    #[remote(name = "Greeter", version = 2)]
    pub trait Greeter {
        /// A greeting in `language`.
        async fn greet(&self, language: String) -> String;
    }
}

struct Named(&'static str);

impl Greeter for Named {
    async fn greet(&self) -> String {
        format!("hello from {}", self.0)
    }
}

impl v2::Greeter for Named {
    async fn greet(&self, language: String) -> String {
        format!("{} in {language}", self.0)
    }
}

#[derive(Default)]
struct Count(AtomicU32);

impl Counter for Count {
    async fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A binder endpoint listening on `address`, with `config`.
async fn binder_at(address: &str, config: BinderConfig) -> (Endpoint, Address, BinderService) {
    let endpoint = Endpoint::new();
    let address = endpoint.listen(address).await.unwrap();
    let service = BinderService::serve(&endpoint, config).unwrap();
    (endpoint, address, service)
}

/// An endpoint listening on loopback TCP.
async fn tcp_endpoint() -> Endpoint {
    let endpoint = Endpoint::new();
    endpoint.listen("tcp://127.0.0.1:0").await.unwrap();
    endpoint
}

fn binder_error(result: Result<impl std::fmt::Debug, Error>) -> BinderError {
    match result {
        Err(Error::Binder(error)) => error,
        other => panic!("expected a binder error, got {other:?}"),
    }
}

async fn names(naming: &Naming) -> Vec<String> {
    naming.list().await.unwrap().into_iter().map(|b| b.name).collect()
}

#[tokio::test]
async fn an_object_registered_from_another_host_is_called_on_its_own_host() {
    let (binder, binder_address, _service) = binder_at("tcp://127.0.0.1:0", BinderConfig::default()).await;
    let server = tcp_endpoint().await;
    let greeter = server.export(GreeterSkeleton::new(Named("server")));
    let counter = server.export(CounterSkeleton::new(Count::default()));
    let at_binder = Naming::connect(&server, &binder_address).await.unwrap();
    at_binder.bind("greeter", &greeter).await.unwrap();
    at_binder.bind("counter", &counter).await.unwrap();

    let client = Endpoint::new();
    let naming = Naming::connect(&client, &binder_address).await.unwrap();
    let binding = naming.resolve("greeter").await.unwrap();
    assert_eq!(binding.reference, greeter);
    assert_eq!(binding.interface_name, "Greeter");
    assert_eq!(binding.registrant, server.id());
    assert!(binding.expires_in.is_some_and(|left| left <= BinderConfig::DEFAULT_LEASE));

    let remote: GreeterClient = naming.lookup("greeter").await.unwrap();
    assert_eq!(remote.greet().await.unwrap(), "hello from server");
    assert_eq!(
        remote.proxy().connection().unwrap().peer_endpoint(),
        server.id(),
        "the call went through the binder"
    );
    let count: CounterClient = naming.lookup("counter").await.unwrap();
    assert_eq!(count.next().await.unwrap(), 1);
    // One connection to the binder, one to the server, shared by both stubs.
    assert_eq!(client.connections().len(), 2);
    assert_eq!(client.connections().iter().filter(|c| c.peer_endpoint() == server.id()).count(), 1);
    assert_ne!(binder.id(), server.id());
}

#[tokio::test]
async fn a_name_is_bound_once_until_rebound_or_unbound() {
    let (_binder, address, _service) = binder_at("tcp://127.0.0.1:0", BinderConfig::default()).await;
    let server = tcp_endpoint().await;
    let first = server.export(GreeterSkeleton::new(Named("first")));
    let second = server.export(GreeterSkeleton::new(Named("second")));
    let naming = Naming::connect(&server, &address).await.unwrap();

    naming.bind("greeter", &first).await.unwrap();
    assert_eq!(binder_error(naming.bind("greeter", &second).await), BinderError::NameTaken("greeter".into()));
    let remote: GreeterClient = naming.lookup("greeter").await.unwrap();
    assert_eq!(remote.greet().await.unwrap(), "hello from first", "a refused bind changed the entry");

    naming.rebind("greeter", &second).await.unwrap();
    let remote: GreeterClient = naming.lookup("greeter").await.unwrap();
    assert_eq!(remote.greet().await.unwrap(), "hello from second");

    naming.unbind("greeter").await.unwrap();
    assert_eq!(binder_error(naming.resolve("greeter").await), BinderError::NotBound("greeter".into()));
    assert_eq!(binder_error(naming.unbind("greeter").await), BinderError::NotBound("greeter".into()));
    naming.bind("greeter", &first).await.unwrap();
}

#[tokio::test]
async fn a_lookup_never_returns_a_mistyped_stub() {
    let (_binder, address, _service) = binder_at("tcp://127.0.0.1:0", BinderConfig::default()).await;
    let server = tcp_endpoint().await;
    let naming = Naming::connect(&server, &address).await.unwrap();
    naming.bind("greeter", &server.export(GreeterSkeleton::new(Named("v1")))).await.unwrap();

    let client = Naming::connect(&Endpoint::new(), &address).await.unwrap();
    let wrong_interface = binder_error(client.lookup::<CounterClient>("greeter").await);
    assert_eq!(
        wrong_interface,
        BinderError::WrongInterface {
            name: "greeter".into(),
            expected: CounterClient::DESCRIPTOR.id,
            expected_name: "Counter".into(),
            bound: GreeterClient::DESCRIPTOR.id,
            bound_name: "Greeter".into(),
        }
    );
    assert!(
        wrong_interface.to_string().starts_with("`greeter` is bound to an object of interface Greeter (0x")
    );
    let wrong_version = binder_error(client.lookup::<v2::GreeterClient>("greeter").await);
    assert_eq!(wrong_version, BinderError::WrongVersion { name: "greeter".into(), expected: 2, bound: 1 });
}

#[tokio::test]
async fn objects_are_found_by_interface_and_version_range() {
    let (_binder, address, _service) = binder_at("tcp://127.0.0.1:0", BinderConfig::default()).await;
    let (host_a, host_b) = (tcp_endpoint().await, tcp_endpoint().await);
    let at_a = Naming::connect(&host_a, &address).await.unwrap();
    let at_b = Naming::connect(&host_b, &address).await.unwrap();
    at_a.bind("a/greeter", &host_a.export(GreeterSkeleton::new(Named("a")))).await.unwrap();
    at_b.bind("b/greeter", &host_b.export(GreeterSkeleton::new(Named("b")))).await.unwrap();
    at_b.bind("b/greeter-v2", &host_b.export(v2::GreeterSkeleton::new(Named("b2")))).await.unwrap();
    at_a.bind("a/counter", &host_a.export(CounterSkeleton::new(Count::default()))).await.unwrap();

    let client = Naming::connect(&Endpoint::new(), &address).await.unwrap();
    let greeter = InterfaceId::from_name("Greeter");
    let found =
        |bindings: Vec<rmi_runtime::Binding>| bindings.into_iter().map(|b| b.name).collect::<Vec<_>>();
    assert_eq!(
        found(client.lookup_interface(greeter, Versions::ANY).await.unwrap()),
        ["a/greeter", "b/greeter", "b/greeter-v2"]
    );
    assert_eq!(found(client.lookup_interface(greeter, 2..=5).await.unwrap()), ["b/greeter-v2"]);
    assert_eq!(
        found(client.lookup_interface(greeter, Versions::exactly(3)).await.unwrap()),
        Vec::<String>::new()
    );

    let mut greetings = Vec::new();
    for (name, stub) in client.lookup_all::<GreeterClient>().await.unwrap() {
        greetings.push(format!("{name}: {}", stub.greet().await.unwrap()));
    }
    assert_eq!(greetings, ["a/greeter: hello from a", "b/greeter: hello from b"]);
    let v2: v2::GreeterClient = client.lookup_any().await.unwrap();
    assert_eq!(v2.greet("French".into()).await.unwrap(), "b2 in French");
    let counter: CounterClient = client.lookup_any().await.unwrap();
    assert_eq!(counter.next().await.unwrap(), 1);

    at_a.unbind("a/counter").await.unwrap();
    let none = binder_error(client.lookup_any::<CounterClient>().await);
    assert_eq!(
        none,
        BinderError::NoneBound { interface: CounterClient::DESCRIPTOR.id, versions: Versions::exactly(1) }
    );
}

#[tokio::test]
async fn changes_need_the_secret_when_the_binder_has_one_and_lookups_do_not() {
    let access = Access::local_only().secret(Secret::new("open sesame"));
    let (_binder, address, _service) =
        binder_at("tcp://127.0.0.1:0", BinderConfig::default().access(access)).await;
    let server = tcp_endpoint().await;
    let greeter = server.export(GreeterSkeleton::new(Named("s")));

    let anonymous = Naming::connect(&server, &address).await.unwrap();
    let refused = binder_error(anonymous.bind("greeter", &greeter).await);
    assert!(
        matches!(&refused, BinderError::Unauthorized(why) if why.contains("requires a secret")),
        "{refused}"
    );
    let wrong = anonymous.clone().with_secret(Secret::new("open says me"));
    assert!(matches!(binder_error(wrong.bind("greeter", &greeter).await), BinderError::Unauthorized(_)));
    assert!(names(&anonymous).await.is_empty(), "a refused bind changed the binder");

    let trusted = anonymous.clone().with_secret(Secret::new("open sesame"));
    trusted.bind("greeter", &greeter).await.unwrap();
    assert!(matches!(binder_error(anonymous.unbind("greeter").await), BinderError::Unauthorized(_)));
    let remote: GreeterClient = anonymous.lookup("greeter").await.unwrap();
    assert_eq!(remote.greet().await.unwrap(), "hello from s", "lookups need no secret");
    trusted.unbind("greeter").await.unwrap();
}

#[tokio::test]
async fn a_peer_outside_the_allowed_networks_cannot_change_the_binder() {
    let access = Access::local_only().allow_local(false).allow("10.0.0.0/8".parse().unwrap());
    let (binder, address, service) =
        binder_at("tcp://127.0.0.1:0", BinderConfig::default().access(access)).await;
    let server = tcp_endpoint().await;
    let naming = Naming::connect(&server, &address).await.unwrap();
    let refused =
        binder_error(naming.bind("greeter", &server.export(GreeterSkeleton::new(Named("s")))).await);
    assert!(matches!(&refused, BinderError::Unauthorized(why) if why.contains("127.0.0.1")), "{refused}");
    assert!(names(&naming).await.is_empty());

    // The binder's own process is trusted whatever the rules.
    let local = Naming::local(&binder, &service);
    local.bind("here", &binder.export(CounterSkeleton::new(Count::default()))).await.unwrap();
    assert_eq!(names(&naming).await, ["here"]);
}

#[tokio::test]
async fn entries_and_names_are_bounded() {
    let config = BinderConfig::default().max_entries(2).max_name_len(8);
    let (_binder, address, _service) = binder_at("tcp://127.0.0.1:0", config).await;
    let server = tcp_endpoint().await;
    let naming = Naming::connect(&server, &address).await.unwrap();
    let object = server.export(CounterSkeleton::new(Count::default()));

    let hidden = "invisible formatting characters";
    for (name, why) in
        [("", "empty"), ("123456789", "over the limit of 8"), ("a\nb", hidden), ("ab\u{202e}c", hidden)]
    {
        let error = binder_error(naming.bind(name, &object).await);
        assert!(matches!(&error, BinderError::Invalid(text) if text.contains(why)), "{name:?}: {error}");
    }
    naming.bind("one", &object).await.unwrap();
    naming.bind("two", &object).await.unwrap();
    assert_eq!(binder_error(naming.bind("three", &object).await), BinderError::Full { limit: 2 });
    naming.rebind("two", &object).await.unwrap();
    naming.unbind("one").await.unwrap();
    naming.bind("three", &object).await.unwrap();
    assert_eq!(names(&naming).await, ["three", "two"]);
}

#[tokio::test]
async fn entries_made_in_the_binders_process_have_no_lease() {
    let (binder, address, service) = binder_at("tcp://127.0.0.1:0", BinderConfig::default()).await;
    let local = Naming::local(&binder, &service);
    local.bind("counter", &binder.export(CounterSkeleton::new(Count::default()))).await.unwrap();
    assert_eq!(service.len(), 1);

    let client = Naming::connect(&Endpoint::new(), &address).await.unwrap();
    let binding = client.resolve("counter").await.unwrap();
    assert_eq!((binding.expires_in, binding.registrant), (None, binder.id()));
    let counter: CounterClient = client.lookup("counter").await.unwrap();
    assert_eq!(counter.next().await.unwrap(), 1);
}

const LEASE: Duration = Duration::from_secs(1);

/// A server on `memory://{name}-server` that registered a counter as `counter` at the binder at
/// `binder`.
async fn registered_counter(binder: &Address, name: &str) -> (Endpoint, Naming) {
    let server = Endpoint::new();
    server.listen(format!("memory://{name}-server")).await.unwrap();
    let naming = Naming::connect(&server, binder).await.unwrap();
    naming.bind("counter", &server.export(CounterSkeleton::new(Count::default()))).await.unwrap();
    (server, naming)
}

/// Time is paused: it moves on only when every task waits, so renewals every third of the lease
/// and expiries happen at exact virtual instants.
#[tokio::test(start_paused = true)]
async fn an_entry_nobody_renews_lives_exactly_one_lease() {
    let (_binder, address, _service) =
        binder_at("memory://binder-expiry", BinderConfig::default().lease(LEASE)).await;
    // A registrant that binds through the raw interface, with no lease keeper: like a process
    // that died right after binding.
    let registrant = Endpoint::new();
    let object = registrant.export(CounterSkeleton::new(Count::default()));
    let raw: BinderClient = registrant.proxy_at(&address, BINDER_OBJECT).await.unwrap();
    assert_eq!(raw.bind("counter".into(), object, String::new(), None).await.unwrap(), Ok(LEASE));

    let client = Naming::connect(&Endpoint::new(), &address).await.unwrap();
    tokio::time::sleep(LEASE - Duration::from_millis(1)).await;
    assert_eq!(names(&client).await, ["counter"], "the entry vanished before its lease ran out");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(names(&client).await.is_empty(), "the entry outlived its lease");
    assert_eq!(binder_error(client.resolve("counter").await), BinderError::NotBound("counter".into()));
    // Renewing starts a new lease, without the entry, and says the registrant may bind it again.
    let grant = raw.renew(None).await.unwrap().unwrap();
    assert_eq!((grant.names, grant.lapsed), (vec![], vec!["counter".to_owned()]));
    assert!(names(&client).await.is_empty(), "a renewal brought an expired entry back");
    // Once someone else has bound the name, it is theirs.
    let other = Endpoint::new().export(CounterSkeleton::new(Count::default()));
    client.bind("counter", &other).await.unwrap();
    assert!(raw.renew(None).await.unwrap().unwrap().lapsed.is_empty());
    assert_eq!(client.resolve("counter").await.unwrap().reference, other);
}

#[tokio::test(start_paused = true)]
async fn a_live_registrant_keeps_its_entries_and_takes_them_away_when_it_shuts_down() {
    let (_binder, address, _service) =
        binder_at("memory://binder-lease", BinderConfig::default().lease(LEASE)).await;
    let (server, _naming) = registered_counter(&address, "binder-lease").await;

    let client = Naming::connect(&Endpoint::new(), &address).await.unwrap();
    tokio::time::sleep(LEASE * 10).await;
    assert_eq!(names(&client).await, ["counter"], "a renewed entry expired");

    // Virtual time stands still while the shutdown runs: the entry goes by unbind, not by lease.
    let before = tokio::time::Instant::now();
    server.shutdown().await;
    assert!(names(&client).await.is_empty(), "a shut-down registrant's entry is still bound");
    assert!(before.elapsed() < LEASE);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_binder_gets_the_entries_of_live_registrants_back() {
    let config = BinderConfig::default().lease(LEASE);
    let (binder, address, _service) = binder_at("memory://binder-restart", config.clone()).await;
    let (_server, _naming) = registered_counter(&address, "binder-restart").await;

    binder.shutdown().await;
    let (_binder, _, service) = binder_at("memory://binder-restart", config).await;
    assert!(service.is_empty());
    // The next renewal finds no lease and binds again.
    tokio::time::sleep(LEASE).await;
    let client = Naming::connect(&Endpoint::new(), &address).await.unwrap();
    let counter: CounterClient = client.lookup("counter").await.unwrap();
    assert_eq!(counter.next().await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unbound_entry_is_not_bound_again_after_a_binder_restart() {
    let config = BinderConfig::default().lease(LEASE);
    let (binder, address, _service) = binder_at("memory://binder-unbind", config.clone()).await;
    let (_server, naming) = registered_counter(&address, "binder-unbind").await;
    naming.unbind("counter").await.unwrap();

    binder.shutdown().await;
    let (_binder, _, service) = binder_at("memory://binder-unbind", config).await;
    tokio::time::sleep(LEASE * 3).await;
    assert!(service.is_empty(), "an unbound entry came back");
}

#[tokio::test(start_paused = true)]
async fn a_registrant_lets_go_of_names_others_rebound_or_unbound() {
    let config = BinderConfig::default().lease(LEASE);
    let (binder, address, _service) = binder_at("memory://binder-takeover", config.clone()).await;
    let (old, at_old) = registered_counter(&address, "binder-takeover").await;
    at_old.bind("spare", &old.export(CounterSkeleton::new(Count::default()))).await.unwrap();

    // A successor takes `counter` over; an administrator removes `spare`.
    let successor = Endpoint::new();
    successor.listen("memory://binder-takeover-successor").await.unwrap();
    let at_successor = Naming::connect(&successor, &address).await.unwrap();
    let new_counter = successor.export(CounterSkeleton::new(Count::default()));
    at_successor.rebind("counter", &new_counter).await.unwrap();
    let admin = Naming::connect(&Endpoint::new(), &address).await.unwrap();
    admin.unbind("spare").await.unwrap();

    // The old registrant learns of both at its next renewal, and does not bind them again when
    // the binder restarts and forgets everything.
    tokio::time::sleep(LEASE / 2).await;
    binder.shutdown().await;
    let (_binder, _, service) = binder_at("memory://binder-takeover", config).await;
    tokio::time::sleep(LEASE).await;
    assert_eq!(names(&admin).await, ["counter"]);
    assert_eq!(
        admin.resolve("counter").await.unwrap().reference,
        new_counter,
        "the old object took the name back"
    );

    // Shutting the old registrant down leaves its successor's entry alone.
    old.shutdown().await;
    assert_eq!(admin.resolve("counter").await.unwrap().reference, new_counter);
    assert_eq!(service.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn leases_at_a_binder_with_a_secret_are_renewed_with_it() {
    let access = Access::local_only().secret(Secret::new("k"));
    let config = BinderConfig::default().lease(LEASE).access(access);
    let (_binder, address, _service) = binder_at("memory://binder-secret-lease", config).await;
    let server = Endpoint::new();
    server.listen("memory://binder-secret-lease-server").await.unwrap();
    let naming = Naming::connect(&server, &address).await.unwrap().with_secret(Secret::new("k"));
    naming.bind("counter", &server.export(CounterSkeleton::new(Count::default()))).await.unwrap();

    // Renewing needs the secret too: a peer claiming to be the registrant cannot keep its entries.
    let raw: BinderClient = server.proxy_at(&address, BINDER_OBJECT).await.unwrap();
    assert!(matches!(raw.renew(None).await.unwrap(), Err(BinderError::Unauthorized(_))));
    tokio::time::sleep(LEASE * 10).await;
    assert_eq!(names(&naming).await, ["counter"], "the keeper did not renew with the secret");
}

#[tokio::test]
async fn references_carry_the_advertised_address() {
    let server = Endpoint::new();
    let listening = server.listen("tcp://127.0.0.1:0").await.unwrap();
    assert_eq!(server.export(CounterSkeleton::new(Count::default())).address, Some(listening.clone()));
    let advertised: Address = "tcp://192.0.2.1:4000".parse().unwrap();
    server.set_advertised_address(advertised.clone());
    assert_eq!(server.export(CounterSkeleton::new(Count::default())).address, Some(advertised));
}
