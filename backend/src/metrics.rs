//! Prometheus metrics: request counts and latency by method, route and status; the chat
//! assistant's turns by engine, tool calls by tool and outcome, and the LLM provider's errors
//! and latency.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels of every request metric, each from a bounded set so no client can grow `/metrics`:
/// `method` is a standard method or `other`, `route` the route pattern (`/api/v1/tasks/{id}`,
/// never the raw path) or `unmatched`, `status` a status code this server answers with.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// Labels of the chat turn counter: which engine answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    engine: String,
}

/// Labels of the tool call counter: the tool and `ok` or the error code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
    outcome: String,
}

/// Labels of the provider error counter: timeout, unreachable, status, malformed, tool_loop.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderErrorLabels {
    kind: String,
}

/// The method as a label: one of the standard methods, or `other` for anything a client made up.
fn method_label(method: &Method) -> &'static str {
    static KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// The registry and the metrics in it.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    chat_turns: Family<EngineLabels, Counter>,
    chat_tool_calls: Family<ToolLabels, Counter>,
    chat_provider_errors: Family<ProviderErrorLabels, Counter>,
    chat_provider_latency: Histogram,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            durations.clone(),
        );
        let chat_turns = Family::<EngineLabels, Counter>::default();
        let chat_tool_calls = Family::<ToolLabels, Counter>::default();
        let chat_provider_errors = Family::<ProviderErrorLabels, Counter>::default();
        let chat_provider_latency = latency_histogram();
        registry.register("chat_turns", "Chat messages answered, by engine", chat_turns.clone());
        registry.register(
            "chat_tool_calls",
            "Assistant tool calls (chat and MCP), by tool and outcome",
            chat_tool_calls.clone(),
        );
        registry.register(
            "chat_provider_errors",
            "LLM provider failures, by kind",
            chat_provider_errors.clone(),
        );
        registry.register(
            "chat_provider_request_duration_seconds",
            "Time the LLM provider took to answer one request",
            chat_provider_latency.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            chat_turns,
            chat_tool_calls,
            chat_provider_errors,
            chat_provider_latency,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A chat message answered by `engine`.
    pub fn chat_turn(&self, engine: &str) {
        self.chat_turns
            .get_or_create(&EngineLabels {
                engine: engine.to_owned(),
            })
            .inc();
    }

    /// A tool call and its outcome (`ok` or an error code).
    pub fn chat_tool_call(&self, tool: &str, outcome: &str) {
        self.chat_tool_calls
            .get_or_create(&ToolLabels {
                tool: tool.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A failed LLM provider turn.
    pub fn chat_provider_error(&self, kind: &str) {
        self.chat_provider_errors
            .get_or_create(&ProviderErrorLabels { kind: kind.to_owned() })
            .inc();
    }

    /// How long one provider request took.
    pub fn chat_provider_latency(&self, seconds: f64) {
        self.chat_provider_latency.observe(seconds);
    }

    fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }
}

/// Middleware that counts and times every request.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    metrics.observe(labels, started.elapsed().as_secs_f64());
    response
}
