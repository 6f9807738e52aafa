//! Each caller's share of an instance's event streams
//! (EVENT_STREAMS_PER_CALLER): by API key, by client address without
//! callers, over the real binary, and under the instance's own bound.

use std::time::Duration;

use account_service::access::Scope;
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{AccountEvent, WatchAccountEventsRequest};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

use crate::access::{with_key, KeysFile};
use crate::access_binary::{binary, Service};
use crate::helpers::*;
use crate::on_both_backends;

async fn open(channel: &Channel, key: Option<&str>) -> Result<Streaming<AccountEvent>, Status> {
    AccountServiceClient::new(channel.clone())
        .watch_account_events(with_key(WatchAccountEventsRequest::default(), key))
        .await
        .map(tonic::Response::into_inner)
}

/// A refusal for the caller's share: RESOURCE_EXHAUSTED, reason
/// STREAM_LIMIT, and the share in its metadata.
fn assert_stream_limit(result: Result<Streaming<AccountEvent>, Status>, limit: usize) {
    let Err(status) = result else {
        panic!("the stream was opened");
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status).as_deref(), Some("STREAM_LIMIT"));
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata.get("limit"), Some(&limit.to_string()));
}

/// Opens a stream once the instance has noticed that one was dropped.
async fn reopen(channel: &Channel, key: Option<&str>) -> Option<Streaming<AccountEvent>> {
    eventually(Duration::from_secs(10), || async {
        open(channel, key).await.ok()
    })
    .await
}

fn readers() -> KeysFile {
    KeysFile::new(&[
        ("crm", &[Scope::EventsRead], None),
        ("shop", &[Scope::EventsRead], None),
    ])
}

on_both_backends!(a_caller_holds_its_share_and_no_more);

async fn a_caller_holds_its_share_and_no_more(backend: Backend) {
    let keys = readers();
    let (var, path) = keys.setting();
    let app = spawn_app(backend)
        .set(var, path)
        .set("EVENT_STREAMS_PER_CALLER", "2")
        .await;
    let crm = Some(keys.key("crm"));

    let first = open(&app.channel, crm).await.unwrap();
    let _second = open(&app.channel, crm).await.unwrap();
    assert_stream_limit(open(&app.channel, crm).await, 2);
    // Another caller still gets streams.
    let _shop = open(&app.channel, Some(keys.key("shop"))).await.unwrap();
    // A stream its consumer drops gives its place back.
    drop(first);
    let _again = reopen(&app.channel, crm)
        .await
        .expect("the place was freed");
    assert_stream_limit(open(&app.channel, crm).await, 2);
}

/// Without callers, a stream counts against the peer's address.
#[tokio::test]
async fn without_callers_each_client_address_has_its_share() {
    let app = spawn_app(Backend::Sqlite)
        .set("EVENT_STREAMS_PER_CALLER", "2")
        .await;
    let _first = open(&app.channel, None).await.unwrap();
    let _second = open(&app.channel, None).await.unwrap();
    assert_stream_limit(open(&app.channel, None).await, 2);
    // The same loopback interface, another address.
    let other = Channel::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .connect()
        .await
        .unwrap();
    let _other = open(&other, None).await.unwrap();
}

/// The instance's own bound still holds when no caller is at its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_bound_holds_across_callers() {
    let keys = readers();
    let (var, path) = keys.setting();
    let max = account_service::events::MAX_WATCHERS;
    let share = max - 50;
    let app = spawn_app(Backend::Sqlite)
        .set(var, path)
        .set("EVENT_STREAMS_PER_CALLER", share.to_string())
        .await;
    let channels: Vec<Channel> = (0..4)
        .map(|_| {
            Channel::from_shared(format!("http://{}", app.grpc_addr))
                .unwrap()
                .connect_lazy()
        })
        .collect();
    let (crm, shop) = (Some(keys.key("crm")), Some(keys.key("shop")));
    let mut open_streams = Vec::new();
    for i in 0..share {
        open_streams.push(open(&channels[i % 4], crm).await.unwrap());
    }
    assert_stream_limit(open(&app.channel, crm).await, share);
    for i in share..max {
        open_streams.push(open(&channels[i % 4], shop).await.unwrap());
    }
    let Err(full) = open(&app.channel, shop).await else {
        panic!("a stream past the instance's bound");
    };
    assert_eq!(full.code(), Code::ResourceExhausted);
    assert_ne!(reason(&full).as_deref(), Some("STREAM_LIMIT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_limits_each_callers_streams() {
    let keys = readers();
    let service = Service::start(&[
        ("API_KEYS_FILE", keys.path.display().to_string()),
        ("EVENT_STREAMS_PER_CALLER", "2".to_owned()),
    ])
    .await;
    let channel = service.plaintext().await;
    let crm = Some(keys.key("crm"));
    let first = open(&channel, crm).await.unwrap();
    let _second = open(&channel, crm).await.unwrap();
    assert_stream_limit(open(&channel, crm).await, 2);
    let _shop = open(&channel, Some(keys.key("shop"))).await.unwrap();
    drop(first);
    let again = reopen(&channel, crm).await;
    assert!(again.is_some(), "{}", service.log_text());
    assert_stream_limit(open(&channel, crm).await, 2);
}

#[test]
fn check_config_bounds_the_streams_per_caller() {
    let max = account_service::events::MAX_WATCHERS;
    for (value, ok) in [
        ("0".to_owned(), false),
        ("1".to_owned(), true),
        (max.to_string(), true),
        ((max + 1).to_string(), false),
    ] {
        let output = binary()
            .arg("check-config")
            .env("EVENT_STREAMS_PER_CALLER", &value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if ok {
            assert!(output.status.success(), "{value}: {stderr}");
        } else {
            assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
            assert!(
                stderr.contains("EVENT_STREAMS_PER_CALLER")
                    && stderr.contains(&format!("between 1 and {max}")),
                "{value}: {stderr}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        }
    }
}
