//! Connection to the control API: channel setup, the bearer-token interceptor, per-call
//! deadlines, and the mapping of failures (gRPC statuses, connect errors) to
//! [`CliError`]s with hints drawn from where the settings came from.

use crate::context::{Resolved, Source};
use crate::error::CliError;
use dittofs_proto::v1::control_service_client::ControlServiceClient;
use std::future::Future;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub(crate) struct BearerAuth {
    header: Option<MetadataValue<Ascii>>,
}

impl BearerAuth {
    pub(crate) fn new(token: Option<&str>) -> Result<Self, CliError> {
        let header = match token {
            None => None,
            Some(t) => {
                let mut v: MetadataValue<Ascii> = format!("Bearer {t}").parse().map_err(|_| {
                    CliError::Usage("the token contains characters not allowed in a header".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        Ok(BearerAuth { header })
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(v) = &self.header {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// The generated client with the auth interceptor.
pub(crate) type Client = ControlServiceClient<InterceptedService<Channel, BearerAuth>>;

/// A connected control API client.
pub(crate) struct Conn {
    client: Client,
    settings: Resolved,
    timeout: Option<Duration>,
}

impl Conn {
    /// Connects eagerly so an unreachable server is reported as such, with its address.
    pub(crate) async fn connect(
        settings: Resolved,
        timeout: Option<Duration>,
    ) -> Result<Conn, CliError> {
        let auth = BearerAuth::new(settings.token.as_deref())?;
        let mut endpoint = Endpoint::from_shared(settings.server.clone())
            .map_err(|e| {
                CliError::Usage(format!("invalid server address {}: {e}", settings.server))
            })?
            .tcp_nodelay(true);
        if let Some(t) = timeout {
            endpoint = endpoint.connect_timeout(t);
        }
        let connecting = endpoint.connect();
        let channel = match timeout {
            Some(t) => tokio::time::timeout(t, connecting)
                .await
                .map_err(|_| unreachable(&settings.server, "timed out connecting"))?,
            None => connecting.await,
        }
        .map_err(|e| unreachable(&settings.server, &error_chain(&e)))?;
        Ok(Conn {
            client: ControlServiceClient::with_interceptor(channel, auth),
            settings,
            timeout,
        })
    }

    /// The server URL.
    pub(crate) fn server(&self) -> &str {
        &self.settings.server
    }

    /// Makes one unary call with the per-call deadline; `f` receives a client handle.
    pub(crate) async fn call<Req, Resp, F, Fut>(&self, req: Req, f: F) -> Result<Resp, CliError>
    where
        F: FnOnce(Client, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let mut request = tonic::Request::new(req);
        if let Some(t) = self.timeout {
            request.set_timeout(t);
        }
        let fut = f(self.client.clone(), request);
        let result = match self.timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(self.status_error(Status::deadline_exceeded(format!(
                        "no answer within {}s (raise --timeout)",
                        t.as_secs()
                    ))));
                }
            },
            None => fut.await,
        };
        result
            .map(tonic::Response::into_inner)
            .map_err(|s| self.status_error(s))
    }

    /// Opens a server stream; the deadline covers only the start of the stream.
    pub(crate) async fn stream<Req, Resp, F, Fut>(
        &self,
        req: Req,
        f: F,
    ) -> Result<tonic::Streaming<Resp>, CliError>
    where
        F: FnOnce(Client, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<tonic::Streaming<Resp>>, Status>>,
    {
        let fut = f(self.client.clone(), tonic::Request::new(req));
        let result = match self.timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| self.status_error(Status::deadline_exceeded("no answer")))?,
            None => fut.await,
        };
        result
            .map(tonic::Response::into_inner)
            .map_err(|s| self.status_error(s))
    }

    /// Turns a status into an error with a helpful message.
    pub(crate) fn status_error(&self, status: Status) -> CliError {
        status_to_error(&status, &self.settings)
    }
}

/// Maps a status to a `CliError`, adding hints for connection and auth failures.
pub(crate) fn status_to_error(status: &Status, settings: &Resolved) -> CliError {
    let code = status.code();
    let msg = if status.message().is_empty() {
        code.description().to_string()
    } else {
        status.message().to_string()
    };
    match code {
        Code::Unavailable => unreachable(&settings.server, &msg),
        Code::DeadlineExceeded => {
            CliError::Unreachable(format!("{} did not answer in time: {msg}", settings.server))
        }
        Code::Unauthenticated | Code::PermissionDenied => {
            let hint = match settings.token_source {
                Source::None => no_token_hint(settings, &msg),
                Source::ServerTokenFile => format!(
                    "; the token came from {}",
                    settings
                        .token_path
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                _ => String::new(),
            };
            CliError::Status {
                code,
                message: format!("{msg}{hint}"),
            }
        }
        Code::Unimplemented => CliError::Status {
            code,
            message: format!("not supported by this server: {msg}"),
        },
        _ => CliError::Status { code, message: msg },
    }
}

/// Says how to give a token (unless the server's `message` already does), and why a
/// local token was not sent if one was withheld.
fn no_token_hint(settings: &Resolved, message: &str) -> String {
    let mut hint = if message.contains("--token-file") {
        "; dfsctl sent no token".to_string()
    } else {
        "; no token was given: use --token-file FILE, DFSCTL_TOKEN or a context \
         (dfsctl context set NAME --server URL --token-file FILE)"
            .to_string()
    };
    if let (Some(own), Some(name)) = (&settings.context_withheld, &settings.context) {
        hint.push_str(&format!(
            "; the token of context {name:?} belongs to {own} and was not sent to {}",
            settings.server
        ));
    }
    if let Some(w) = &settings.withheld {
        let owner = match w.endpoint {
            Some(e) => format!("belongs to the dfs at {e}"),
            None => "has no recorded server address (its dfs is not running)".into(),
        };
        hint.push_str(&format!(
            "; the local token {} {owner} and was not sent to {}",
            w.path.display(),
            settings.server
        ));
    }
    hint
}

fn unreachable(server: &str, detail: &str) -> CliError {
    CliError::Unreachable(format!(
        "cannot reach the dfs control API at {server}: {detail}\n\
         hint: check that `dfs` is running and that --server (DFSCTL_SERVER or the context) \
         points at its control address"
    ))
}

/// An error and its sources, joined with `: ` ("transport error" alone says nothing).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code_for;

    fn settings(source: Source) -> Resolved {
        Resolved {
            server: "http://127.0.0.1:9".into(),
            server_source: Source::Default,
            token: None,
            token_source: source,
            token_path: None,
            context: None,
            withheld: None,
            context_withheld: None,
        }
    }

    #[test]
    fn status_codes_to_exit_codes() {
        let table = [
            (Code::Ok, 0),
            (Code::Cancelled, 1),
            (Code::Unknown, 1),
            (Code::InvalidArgument, 2),
            (Code::DeadlineExceeded, 6),
            (Code::NotFound, 3),
            (Code::AlreadyExists, 4),
            (Code::PermissionDenied, 5),
            (Code::ResourceExhausted, 1),
            (Code::FailedPrecondition, 4),
            (Code::Aborted, 4),
            (Code::OutOfRange, 1),
            (Code::Unimplemented, 1),
            (Code::Internal, 1),
            (Code::Unavailable, 6),
            (Code::DataLoss, 1),
            (Code::Unauthenticated, 5),
        ];
        for (code, want) in table {
            assert_eq!(exit_code_for(code), want, "{code:?}");
            if code != Code::Ok {
                let e = status_to_error(&Status::new(code, "m"), &settings(Source::Flag));
                assert_eq!(e.exit_code(), want, "{code:?} via CliError");
            }
        }
        assert_eq!(CliError::Usage(String::new()).exit_code(), 2);
        assert_eq!(CliError::NotFound(String::new()).exit_code(), 3);
        assert_eq!(CliError::Drift(String::new()).exit_code(), 8);
        assert_eq!(CliError::Failed(String::new()).exit_code(), 1);
        assert_eq!(CliError::Unreachable(String::new()).exit_code(), 6);
    }

    #[test]
    fn messages_keep_the_server_text_and_add_hints() {
        let e = status_to_error(
            &Status::not_found("share \"/x\" not found"),
            &settings(Source::Flag),
        );
        assert_eq!(e.to_string(), "share \"/x\" not found");
        let e = status_to_error(
            &Status::unauthenticated("bad token"),
            &settings(Source::None),
        );
        assert!(
            e.to_string().starts_with("bad token; no token was given"),
            "{e}"
        );
        let mut s = settings(Source::None);
        s.withheld = Some(crate::context::Withheld {
            path: "/d/control-token".into(),
            endpoint: Some("127.0.0.1:9000".parse().unwrap()),
        });
        let e = status_to_error(&Status::unauthenticated("missing"), &s);
        let text = e.to_string();
        assert!(text.contains("--token-file"), "{text}");
        assert!(
            text.contains("/d/control-token belongs to the dfs at 127.0.0.1:9000"),
            "{text}"
        );
        let e = status_to_error(
            &Status::unavailable("connection refused"),
            &settings(Source::Flag),
        );
        let text = e.to_string();
        assert!(text.contains("http://127.0.0.1:9"), "{text}");
        assert!(text.contains("dfs"), "{text}");
        let e = status_to_error(&Status::new(Code::Internal, ""), &settings(Source::Flag));
        assert_eq!(e.to_string(), Code::Internal.description());
    }

    #[test]
    fn bearer_header() {
        use tonic::service::Interceptor;
        let mut auth = BearerAuth::new(Some("abc")).unwrap();
        let req = auth.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            req.metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer abc")
        );
        let mut none = BearerAuth::new(None).unwrap();
        let req = none.call(tonic::Request::new(())).unwrap();
        assert!(req.metadata().get("authorization").is_none());
        assert!(BearerAuth::new(Some("bad\ntoken")).is_err());
    }
}
