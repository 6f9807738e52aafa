//! The S3-compatible server of the tests, when the environment names one
//! (CI starts s3s-fs with fixed keys): its endpoint and keys, fresh buckets
//! made with a signed CreateBucket, and the settings that point the
//! application at one.

use account_service::config::S3Access;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector};
use object_store::ClientOptions;

/// Every test bucket's region: s3s-fs takes any, AWS needs one.
pub const REGION: &str = "us-east-1";

/// Finds the S3 server of the environment.
pub struct S3Server;

impl S3Server {
    /// The server TEST_S3_ENDPOINT names, reached with TEST_S3_ACCESS_KEY
    /// and TEST_S3_SECRET_KEY. Without it the test is skipped (`None`, with
    /// a message), unless REQUIRE_S3_TESTS=1 (as in CI), where a skip would
    /// hide a gap and fails instead.
    pub fn from_env() -> Option<S3Settings> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match var("TEST_S3_ENDPOINT") {
            Some(endpoint) => Some(S3Settings {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                access_key: var("TEST_S3_ACCESS_KEY")
                    .expect("TEST_S3_ENDPOINT is set but TEST_S3_ACCESS_KEY is not"),
                secret_key: var("TEST_S3_SECRET_KEY")
                    .expect("TEST_S3_ENDPOINT is set but TEST_S3_SECRET_KEY is not"),
            }),
            None => {
                assert!(
                    std::env::var("REQUIRE_S3_TESTS").as_deref() != Ok("1"),
                    "REQUIRE_S3_TESTS=1 but TEST_S3_ENDPOINT is not set"
                );
                eprintln!("skipped: set TEST_S3_ENDPOINT (and its keys) to run the S3 variant");
                None
            }
        }
    }
}

/// How to reach the tests' S3 server.
#[derive(Clone)]
pub struct S3Settings {
    /// `http://127.0.0.1:PORT`, without a trailing `/`.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &"[REDACTED]")
            .finish()
    }
}

impl S3Settings {
    /// Creates bucket `name` (CreateBucket, path-style, signed with SigV4),
    /// which must not exist yet.
    pub async fn create_bucket(&self, name: &str) {
        let credential = AwsCredential {
            key_id: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            token: None,
        };
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.method_mut() = "PUT".parse().unwrap();
        *request.uri_mut() = format!("{}/{name}", self.endpoint).parse().unwrap();
        AwsAuthorizer::new(&credential, "s3", REGION)
            .try_authorize(&mut request, None)
            .unwrap();
        let client = ReqwestConnector::default()
            .connect(&ClientOptions::new().with_allow_http(true))
            .unwrap();
        let response = client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("CreateBucket {name}: {e}"));
        let status = response.status();
        if !status.is_success() {
            let body = response.into_body().bytes().await.unwrap_or_default();
            panic!(
                "CreateBucket {name}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    /// A new bucket of its own for one test; its name.
    ///
    /// The name is short on purpose: s3s-fs keeps an object's metadata in
    /// one file named after the base64 of bucket and key, which must fit in
    /// 255 bytes. With these 17 characters and a profile image's 125, a
    /// MEDIA_STORE prefix of up to 24 characters fits.
    pub async fn fresh_bucket(&self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("t{}", &id[..16]);
        self.create_bucket(&name).await;
        name
    }

    /// The settings of an application that keeps its images in `bucket`,
    /// under `prefix` (may be empty), for `spawn_app(..).set_all(...)`.
    pub fn app_settings(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let store = match prefix.trim_matches('/') {
            "" => format!("s3://{bucket}"),
            prefix => format!("s3://{bucket}/{prefix}"),
        };
        [
            ("MEDIA_STORE", store),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The same access as settings, for `MediaStore::open_with`.
    pub fn access(&self) -> S3Access {
        S3Access {
            aws_endpoint_url: Some(self.endpoint.clone()),
            aws_region: Some(REGION.to_owned()),
            aws_access_key_id: Some(self.access_key.clone().into()),
            aws_secret_access_key: Some(self.secret_key.clone().into()),
            aws_session_token: None,
        }
    }
}
