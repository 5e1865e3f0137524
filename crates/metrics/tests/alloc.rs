//! Recording a request allocates nothing: the proxy's log phase calls [`Shard::record_with`]
//! per request, so this is measured with a counting global allocator.
#[path = "../../../tests/shared/counting_alloc.rs"]
mod counting_alloc;
use gatehouse_metrics::*;

#[test]
fn recording_allocates_nothing() {
    let reg = Registry::new(RegistryOptions {
        shards: 2,
        node_id: "n".into(),
        version: "v".into(),
        subsystem: "http".into(),
    });
    let mut b = reg.snapshot_builder();
    let rm = b.route(
        RouteLabels {
            service: "s".into(),
            route: "r".into(),
            workspace: "default".into(),
        },
        MetricFlags::default(),
    );
    b.commit();
    let shard = reg.shard(1).expect("shard");
    let o = Observation {
        status: 200,
        source: Some(Source::Service),
        kong_ms: Some(1),
        upstream_ms: Some(30),
        request_ms: Some(31),
        bytes_in: 10,
        bytes_out: 100,
    };
    counting_alloc::set_counting(true);
    for i in 0..1000u64 {
        shard.request();
        shard.request_started();
        shard.record_with(
            &rm,
            MetricFlags::ALL,
            None,
            &Observation {
                upstream_ms: Some(i),
                ..o
            },
        );
        shard.request_finished();
        shard.set_router_cache(i, 1);
    }
    counting_alloc::set_counting(false);
    assert_eq!(
        counting_alloc::allocations(),
        0,
        "allocations in 1000 requests"
    );
}
