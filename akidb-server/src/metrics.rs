//! Request metrics in Prometheus's text format: counts by route and status, a latency
//! histogram by route; queue depth and collection sizes are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Route {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The service's counters (one short lock per request).
#[derive(Default)]
pub(crate) struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
}

impl Metrics {
    /// Records one request.
    pub(crate) fn observe(&self, route: &str, status: u16, took: Duration) {
        let s = took.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = routes.entry(route.to_string()).or_default();
        *r.by_status.entry(status).or_default() += 1;
        for (b, le) in r.buckets.iter_mut().zip(BUCKETS) {
            if s <= le {
                *b += 1;
            }
        }
        r.count += 1;
        r.sum += s;
    }

    /// The text exposition, with the model queues' depths and the collections' sizes.
    pub(crate) fn render(&self, queues: &[(String, usize)], sizes: &[(String, u64)]) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP akidb_requests_total Requests by route and status.\n");
        out.push_str("# TYPE akidb_requests_total counter\n");
        for (route, r) in routes.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "akidb_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP akidb_request_seconds Request latency by route.\n");
        out.push_str("# TYPE akidb_request_seconds histogram\n");
        for (route, r) in routes.iter() {
            let route = escape(route);
            for (b, le) in r.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "akidb_request_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {b}"
                );
            }
            let _ = writeln!(
                out,
                "akidb_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(out, "akidb_request_seconds_sum{{route=\"{route}\"}} {}", r.sum);
            let _ = writeln!(out, "akidb_request_seconds_count{{route=\"{route}\"}} {}", r.count);
        }
        out.push_str("# HELP akidb_model_queue_depth Requests holding or waiting for a model.\n");
        out.push_str("# TYPE akidb_model_queue_depth gauge\n");
        for (model, depth) in queues {
            let _ = writeln!(out, "akidb_model_queue_depth{{model=\"{}\"}} {depth}", escape(model));
        }
        out.push_str("# HELP akidb_collection_documents Live documents per collection.\n");
        out.push_str("# TYPE akidb_collection_documents gauge\n");
        for (name, n) in sizes {
            let _ =
                writeln!(out, "akidb_collection_documents{{collection=\"{}\"}} {n}", escape(name));
        }
        out
    }
}

/// A label value as the text format wants it.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_add_up() {
        let m = Metrics::default();
        m.observe("/v1/x", 200, Duration::from_millis(3));
        m.observe("/v1/x", 200, Duration::from_millis(30));
        m.observe("/v1/x", 404, Duration::from_secs(20));
        let t = m.render(&[("minilm".into(), 2)], &[("logs".into(), 7)]);
        assert!(t.contains("akidb_requests_total{route=\"/v1/x\",status=\"200\"} 2"));
        assert!(t.contains("akidb_requests_total{route=\"/v1/x\",status=\"404\"} 1"));
        assert!(t.contains("akidb_request_seconds_bucket{route=\"/v1/x\",le=\"0.005\"} 1"));
        assert!(t.contains("akidb_request_seconds_bucket{route=\"/v1/x\",le=\"0.05\"} 2"));
        assert!(t.contains("akidb_request_seconds_bucket{route=\"/v1/x\",le=\"+Inf\"} 3"));
        assert!(t.contains("akidb_model_queue_depth{model=\"minilm\"} 2"));
        assert!(t.contains("akidb_collection_documents{collection=\"logs\"} 7"));
    }
}
