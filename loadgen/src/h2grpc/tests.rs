use super::*;
use account_service::proto::account::v1::{get_account_request, GetAccountRequest};
use prost::Message;
use tokio::net::TcpListener;

/// How the test server answers every call.
#[derive(Clone, Copy)]
enum Answer {
    /// A head, the request's own message back, then `grpc-status: 0`.
    Echo,
    /// A head, then trailers with this status and no message.
    Trailers(Code),
    /// One head that ends the stream and carries the status.
    TrailersOnly(Code),
    /// An HTTP status that is not 200.
    Http(StatusCode),
}

/// Starts an HTTP/2 server on port 0 that answers every call as `answer`
/// says; returns the URI of GetAccount on it.
async fn server(answer: Answer) -> Uri {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        while let Some(Ok((request, mut respond))) = connection.accept().await {
            tokio::spawn(async move {
                let mut body = request.into_body();
                let mut received = BytesMut::new();
                while let Some(Ok(chunk)) = body.data().await {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    received.extend_from_slice(&chunk);
                }
                let head = |status: StatusCode| {
                    http::Response::builder()
                        .status(status)
                        .header("content-type", "application/grpc")
                };
                let status_fields = |code: Code| {
                    let mut fields = HeaderMap::new();
                    fields.insert("grpc-status", (code as i32).into());
                    fields.insert("grpc-message", HeaderValue::from_static("no such account"));
                    fields
                };
                match answer {
                    Answer::Echo => {
                        let mut send = respond
                            .send_response(head(StatusCode::OK).body(()).unwrap(), false)
                            .unwrap();
                        send.send_data(received.freeze(), false).unwrap();
                        send.send_trailers(status_fields(Code::Ok)).unwrap();
                    }
                    Answer::Trailers(code) => {
                        let mut send = respond
                            .send_response(head(StatusCode::OK).body(()).unwrap(), false)
                            .unwrap();
                        send.send_trailers(status_fields(code)).unwrap();
                    }
                    Answer::TrailersOnly(code) => {
                        let mut response = head(StatusCode::OK).body(()).unwrap();
                        response.headers_mut().extend(status_fields(code));
                        respond.send_response(response, true).unwrap();
                    }
                    Answer::Http(status) => {
                        respond
                            .send_response(head(status).body(()).unwrap(), true)
                            .unwrap();
                    }
                }
            });
        }
    });
    method_uri(&format!("http://{addr}"), GET_ACCOUNT).unwrap()
}

fn get(id: &str) -> GetAccountRequest {
    GetAccountRequest {
        lookup: Some(get_account_request::Lookup::Id(id.to_owned())),
    }
}

#[test]
fn a_message_is_framed_with_its_length() {
    let request = get("6f1c0f8e-1111-4222-8333-944445555666");
    let framed = message(&request);
    assert_eq!(framed[0], 0);
    assert_eq!(
        u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize,
        framed.len() - 5
    );
    assert_eq!(GetAccountRequest::decode(&framed[5..]).unwrap(), request);
}

#[test]
fn the_method_uri_keeps_the_authority_and_takes_the_path() {
    let uri = method_uri("http://127.0.0.1:50051", GET_ACCOUNT).unwrap();
    assert_eq!(
        uri.to_string(),
        format!("http://127.0.0.1:50051{GET_ACCOUNT}")
    );
    assert!(method_uri("not a uri", GET_ACCOUNT).is_err());
}

#[tokio::test]
async fn many_calls_share_one_connection_and_each_gets_its_own_answer() {
    let uri = server(Answer::Echo).await;
    let connection = Connection::open(&uri).await.unwrap();
    let calls = (0..64).map(|i| {
        let (connection, uri) = (connection.clone(), uri.clone());
        tokio::spawn(async move {
            let id = format!("account-{i}");
            let answer = connection.unary(&uri, message(&get(&id))).await.unwrap();
            assert_eq!(GetAccountRequest::decode(answer).unwrap(), get(&id));
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
}

#[tokio::test]
async fn a_status_in_the_trailers_is_the_calls_status() {
    let uri = server(Answer::Trailers(Code::NotFound)).await;
    let connection = Connection::open(&uri).await.unwrap();
    let status = connection
        .unary(&uri, message(&get("x")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no such account");
}

#[tokio::test]
async fn a_trailers_only_answer_carries_its_status_in_the_head() {
    let uri = server(Answer::TrailersOnly(Code::PermissionDenied)).await;
    let connection = Connection::open(&uri).await.unwrap();
    let status = connection
        .unary(&uri, message(&get("x")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_http_error_is_not_ok() {
    let uri = server(Answer::Http(StatusCode::SERVICE_UNAVAILABLE)).await;
    let connection = Connection::open(&uri).await.unwrap();
    let status = connection
        .unary(&uri, message(&get("x")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
}

#[test]
fn an_ok_without_one_whole_message_is_not_ok() {
    let ok = {
        let mut fields = HeaderMap::new();
        fields.insert("grpc-status", HeaderValue::from_static("0"));
        fields
    };
    let empty = HeaderMap::new();
    for data in [&b""[..], &[0, 0, 0, 0, 9, 1][..], &[1, 0, 0, 0, 0][..]] {
        let answer = outcome(
            StatusCode::OK,
            &empty,
            Some(&ok),
            Bytes::copy_from_slice(data),
        );
        assert_eq!(answer.unwrap_err().code(), Code::Internal, "{data:?}");
    }
    let missing = outcome(StatusCode::OK, &empty, Some(&empty), Bytes::new());
    assert_eq!(missing.unwrap_err().code(), Code::Unknown);
}
