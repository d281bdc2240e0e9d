//! The server's configuration file (TOML).
//!
//! ```toml
//! listen = "127.0.0.1:8080"          # address and port (port 0: any free port); REST and
//!                                     # gRPC share it (HTTP/1.1 and HTTP/2)
//! data_dir = "/var/lib/akidb/db"      # the database directory
//! backup_dir = "/var/lib/akidb/backups"  # where Backup writes (off when absent)
//! max_body_bytes = 16777216           # largest request body (413 above)
//! request_timeout_ms = 30000          # a request still running after this: 503
//! shutdown_deadline_ms = 10000        # after SIGTERM/SIGINT, in-flight requests get this long
//! models_dir = "/var/lib/akidb/models"  # every folder with model.onnx is a model (folder name)
//! models_dir_provider = "cpu"         # their provider: cpu, cuda or tensorrt
//! model_memory_mb = 4096              # weights kept loaded at most; models load on first use
//!                                     # and idle ones are unloaded, least recently used first
//!
//! [models.minilm]                     # text collections name a model by this key
//! dir = "models/all-MiniLM-L6-v2"     # a sentence-transformers folder with model.onnx
//! queue = 64                          # requests waiting for this model at most (429 beyond)
//! provider = "cpu"                    # cpu, cuda or tensorrt
//! device = 0                          # CUDA device (cuda, tensorrt)
//! engine_cache = "/var/cache/akidb/trt"  # TensorRT engine cache (tensorrt)
//! fallback = false                    # run on CPU (with a warning) if the provider fails
//! intra_threads = 2                   # ONNX Runtime threads per run (default: ORT's)
//! spinning = false                    # idle ONNX Runtime threads spin for work (default: true)
//! parallel_runs = 2                   # model runs at once, own sessions (CPU default: 2)
//! batch_texts = 256                   # concurrent requests merged into runs of this many texts
//! batch_wait_ms = 0                   # how long a run waits for more requests
//! max_length = 256                    # tokens per text at most (default: the folder's)
//! dimension = 256                     # Matryoshka truncation below the model's dimension
//! fixed_single = 64                   # single texts up to this many tokens: fixed-shape session
//!
//! [tls]                               # HTTPS and gRPC over TLS (off when absent)
//! cert = "/etc/akidb/server.crt"      # PEM certificate chain
//! key = "/etc/akidb/server.key"       # PEM private key
//!
//! [cors]                              # off when absent: browsers may not call from elsewhere
//! allow_origins = ["https://ui.robot.local"]
//!
//! [auth]
//! disabled = false                    # allowed only with a loopback `listen`
//! [[auth.keys]]
//! key_env = "AKIDB_WRITE_KEY"         # the key from this environment variable (or `key = ...`)
//! scope = "write"                     # "read": GET and searches; "write": everything
//! ```
//!
//! Relative paths in the file are taken from the file's own directory ([`Config::load`]).
//! Every field is checked when the file is read ([`Config::from_toml`]): unknown keys, keys
//! shorter than 16 bytes, an empty key set without `disabled`, `disabled` on a non-loopback
//! address are refused with a message naming the field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database directory.
    pub data_dir: PathBuf,
    /// Largest request body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Per-request time limit in milliseconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// How long in-flight requests may finish after a shutdown signal, in milliseconds.
    #[serde(default = "default_shutdown")]
    pub shutdown_deadline_ms: u64,
    /// Directory that backups are written under; `None`: backups refused.
    #[serde(default)]
    pub backup_dir: Option<PathBuf>,
    /// Embedding models by name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// A directory whose model folders (each with `model.onnx`) are models too, named by the
    /// folder, with the defaults of a `[models.NAME]` section (one there takes precedence).
    #[serde(default)]
    pub models_dir: Option<PathBuf>,
    /// The execution provider of the models found in `models_dir`.
    #[serde(default)]
    pub models_dir_provider: Provider,
    /// Megabytes of model weights kept loaded at most: models load on first use and the least
    /// recently used idle ones are unloaded above this (`None`: no limit).
    #[serde(default)]
    pub model_memory_mb: Option<u64>,
    /// API keys.
    #[serde(default)]
    pub auth: AuthConfig,
    /// TLS certificate and key; `None`: plain TCP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Origins browsers may call from; `None`: no CORS headers at all.
    #[serde(default)]
    pub cors: Option<CorsConfig>,
}

/// TLS with rustls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Cross-origin requests from browsers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`scheme://host[:port]`) allowed; `*` is refused (keys are credentials).
    pub allow_origins: Vec<String>,
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// ONNX Runtime's CPU provider.
    #[default]
    Cpu,
    /// CUDA.
    Cuda,
    /// TensorRT (fp16 engines), then CUDA, then CPU for nodes it cannot take.
    TensorRt,
}

/// One model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Sentence-transformers folder (model.onnx, tokenizer.json, configs).
    pub dir: PathBuf,
    /// Requests that may wait for this model at once; more are refused with 429.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Execution provider.
    #[serde(default)]
    pub provider: Provider,
    /// CUDA device ordinal.
    #[serde(default)]
    pub device: i32,
    /// TensorRT engine cache directory.
    #[serde(default)]
    pub engine_cache: Option<PathBuf>,
    /// Fall back to CPU, with a warning, when the provider cannot be registered.
    #[serde(default)]
    pub fallback: bool,
    /// ONNX Runtime intra-op threads.
    #[serde(default)]
    pub intra_threads: Option<usize>,
    /// Whether idle ONNX Runtime threads spin waiting for work (default: the library's).
    #[serde(default)]
    pub spinning: Option<bool>,
    /// Model runs that may go at once, each in its own session with its own copy of the
    /// weights and `intra_threads` threads (default then: cores / runs), fed by as many
    /// micro-batching workers. Default ([`ModelConfig::runs`]): 2 on the CPU of a machine
    /// with at least 2 cores, else 1.
    #[serde(default)]
    pub parallel_runs: Option<usize>,
    /// Most texts in one merged model run.
    #[serde(default = "default_batch_texts")]
    pub batch_texts: usize,
    /// How long a run waits for more requests, in milliseconds.
    #[serde(default)]
    pub batch_wait_ms: u64,
    /// Most tokens per text (default: the folder's `max_seq_length`).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Output dimension below the model's (Matryoshka truncation).
    #[serde(default)]
    pub dimension: Option<usize>,
    /// Single texts of up to this many tokens run in a fixed-shape session (a CUDA graph on
    /// CUDA; a second copy of the weights).
    #[serde(default)]
    pub fixed_single: Option<usize>,
}

impl ModelConfig {
    /// The defaults for the model folder `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self {
            dir,
            queue: default_queue(),
            provider: Provider::default(),
            device: 0,
            engine_cache: None,
            fallback: false,
            intra_threads: None,
            spinning: None,
            parallel_runs: None,
            batch_texts: default_batch_texts(),
            batch_wait_ms: 0,
            max_length: None,
            dimension: None,
            fixed_single: None,
        }
    }
}

impl ModelConfig {
    /// Model runs that may go at once: `parallel_runs`, or by default 2 on the CPU (two
    /// single-threaded runs of a few queries each beat one run spread over the cores: at 8
    /// concurrent clients on 2 cores 272-288 queries/s against 206-214, at 1 client 122 against
    /// 145-157, docs/benchmarks.md) and 1 on a GPU (one device; each session would hold its own
    /// copy of the weights there).
    pub fn runs(&self) -> usize {
        self.parallel_runs.unwrap_or(match self.provider {
            Provider::Cpu if cores() >= 2 => 2,
            _ => 1,
        })
    }

    /// The ONNX configuration of this model.
    pub fn onnx(&self) -> Result<akidb::OnnxConfig, akidb::EmbedError> {
        let ep = match self.provider {
            Provider::Cpu => akidb::ExecutionProviderConfig::Cpu,
            Provider::Cuda => akidb::ExecutionProviderConfig::Cuda { device_id: self.device },
            Provider::TensorRt => {
                let cache = self.engine_cache.clone().unwrap_or_else(|| self.dir.join("trt-cache"));
                akidb::ExecutionProviderConfig::tensorrt(self.device, cache)
            }
        };
        let mut c = akidb::OnnxConfig::from_dir(&self.dir)?
            .with_execution_provider(ep)
            .with_fallback(self.fallback);
        let runs = self.runs();
        match self.intra_threads {
            Some(t) => c = c.with_intra_threads(t),
            None if runs > 1 => c = c.with_intra_threads((cores() / runs).max(1)),
            None => {}
        }
        c = c.with_parallel_runs(runs);
        if let Some(s) = self.spinning {
            c = c.with_intra_spinning(s);
        }
        if let Some(n) = self.max_length {
            c = c.with_max_length(n);
        }
        if let Some(d) = self.dimension {
            c = c.with_dimension(d);
        }
        if let Some(n) = self.fixed_single {
            c = c.with_fixed_single(n);
        }
        Ok(c)
    }
}

/// API keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// No keys asked for (only with a loopback `listen`).
    #[serde(default)]
    pub disabled: bool,
    /// The keys.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key itself.
    #[serde(default)]
    pub key: Option<String>,
    /// Or the environment variable holding it.
    #[serde(default)]
    pub key_env: Option<String>,
    /// What it may do.
    pub scope: Scope,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reads: list, info, get, count, searches and text queries.
    Read,
    /// Everything.
    Write,
}

fn default_max_body() -> usize {
    16 << 20
}
fn default_timeout() -> u64 {
    30_000
}
fn default_shutdown() -> u64 {
    10_000
}
/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn default_queue() -> usize {
    64
}
fn default_batch_texts() -> usize {
    256
}

/// Shortest key accepted.
pub const MIN_KEY_BYTES: usize = 16;

impl Config {
    /// Reads the file at `path` ([`Config::from_toml`]); relative paths in it are taken from
    /// the file's directory, not the working directory.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        Self::read(path, |text| Self::from_toml(text, env))
    }

    /// [`Config::load`] for local use of the database and its models (the `akidb` command
    /// outside `serve`): every check but the API keys, which only a server needs.
    pub fn load_local(path: &Path) -> Result<Self, String> {
        Self::read(path, Self::parse)
    }

    fn read(path: &Path, parse: impl FnOnce(&str) -> Result<Self, String>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let c = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        Ok(c.relative_to(base))
    }

    /// Every model: the `[models]` sections, then the folders of `models_dir` not named there.
    pub fn all_models(&self) -> Result<BTreeMap<String, ModelConfig>, String> {
        let mut all = self.models.clone();
        if let Some(dir) = &self.models_dir {
            let entries =
                std::fs::read_dir(dir).map_err(|e| format!("models_dir {}: {e}", dir.display()))?;
            for e in entries.flatten() {
                let path = e.path();
                if let (true, Some(name)) =
                    (path.join("model.onnx").is_file(), e.file_name().to_str())
                {
                    all.entry(name.to_string()).or_insert_with(|| ModelConfig {
                        provider: self.models_dir_provider,
                        ..ModelConfig::at(path.clone())
                    });
                }
            }
        }
        Ok(all)
    }

    /// Relative paths taken from `base`.
    fn relative_to(mut self, base: &Path) -> Self {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        self.backup_dir.iter_mut().for_each(fix);
        self.models_dir.iter_mut().for_each(fix);
        for m in self.models.values_mut() {
            fix(&mut m.dir);
            m.engine_cache.iter_mut().for_each(fix);
        }
        if let Some(t) = &mut self.tls {
            fix(&mut t.cert);
            fix(&mut t.key);
        }
        self
    }

    /// Parses and checks a configuration; `env` looks up environment variables.
    pub fn from_toml(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        Self::parse(text)?.with_keys(env)
    }

    /// Parses and checks everything but the API keys.
    fn parse(text: &str) -> Result<Self, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        if c.max_body_bytes == 0 || c.request_timeout_ms == 0 {
            return Err("max_body_bytes and request_timeout_ms must be above 0".into());
        }
        for (name, m) in &c.models {
            if m.queue == 0 || m.batch_texts == 0 {
                return Err(format!("models.{name}: queue and batch_texts must be at least 1"));
            }
            if m.parallel_runs.is_some_and(|n| n == 0 || n > akidb::MAX_PARALLEL_RUNS) {
                return Err(format!(
                    "models.{name}: parallel_runs must be 1 to {}",
                    akidb::MAX_PARALLEL_RUNS
                ));
            }
        }
        if let Some(cors) = &c.cors {
            for o in &cors.allow_origins {
                let ok = (o.starts_with("http://") || o.starts_with("https://"))
                    && !o.ends_with('/')
                    && o.bytes().all(|b| b.is_ascii_graphic());
                if !ok {
                    return Err(format!(
                        "cors.allow_origins: {o:?} is not an origin (scheme://host[:port]; \
                         no wildcard, no path)"
                    ));
                }
            }
        }
        if let Some(b) = &c.backup_dir {
            if b.starts_with(&c.data_dir) {
                return Err("backup_dir must lie outside data_dir".into());
            }
        }
        Ok(c)
    }

    /// Reads the keys (`env` looks up environment variables) and checks them against `listen`.
    fn with_keys(mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let c = &mut self;
        for (i, k) in c.auth.keys.iter_mut().enumerate() {
            let key = match (&k.key, &k.key_env) {
                (Some(key), None) => key.clone(),
                (None, Some(var)) => env(var).ok_or_else(|| {
                    format!("auth.keys[{i}]: environment variable {var} is not set")
                })?,
                _ => return Err(format!("auth.keys[{i}]: give exactly one of key and key_env")),
            };
            if key.len() < MIN_KEY_BYTES {
                return Err(format!(
                    "auth.keys[{i}]: keys must have at least {MIN_KEY_BYTES} bytes"
                ));
            }
            k.key = Some(key);
        }
        match (c.auth.disabled, c.auth.keys.is_empty()) {
            (true, _) if !c.listen.ip().is_loopback() => {
                Err("auth.disabled is allowed only when listen is a loopback address".into())
            }
            (true, false) => Err("auth.disabled with keys configured: choose one".into()),
            (false, true) => {
                Err("no API keys: add [[auth.keys]], or set auth.disabled on a loopback address"
                    .into())
            }
            _ => Ok(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml(text, &|v| (v == "K").then(|| "0123456789abcdef0123".to_string()))
    }

    #[test]
    fn keys_come_from_the_file_or_the_environment_and_are_checked() {
        let c = parse(
            "listen = \"0.0.0.0:1\"\ndata_dir = \"d\"\n[[auth.keys]]\nkey_env = \"K\"\n\
             scope = \"read\"\n",
        )
        .expect("valid");
        assert_eq!(c.auth.keys[0].key.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(c.auth.keys[0].scope, Scope::Read);
        for (bad, why) in [
            ("[[auth.keys]]\nkey_env = \"NOPE\"\nscope = \"read\"\n", "not set"),
            ("[[auth.keys]]\nkey = \"short\"\nscope = \"read\"\n", "at least 16"),
            ("[[auth.keys]]\nkey = \"0123456789abcdefXX\"\nscope = \"admin\"\n", "unknown variant"),
            ("", "no API keys"),
            ("[auth]\ndisabled = true\n", "loopback"),
            ("typo = 1\n", "unknown field"),
            ("[cors]\nallow_origins = [\"*\"]\n", "not an origin"),
            ("backup_dir = \"d/b\"\n", "outside data_dir"),
            ("[models.m]\ndir = \"m\"\nprovider = \"gpu\"\n", "unknown variant"),
            ("[models.m]\ndir = \"m\"\nparallel_runs = 0\n", "parallel_runs must be 1 to 64"),
            ("[models.m]\ndir = \"m\"\nparallel_runs = 65\n", "parallel_runs must be 1 to 64"),
        ] {
            let err =
                parse(&format!("listen = \"0.0.0.0:1\"\ndata_dir = \"d\"\n{bad}")).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        let ok = parse("listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\n[auth]\ndisabled = true\n");
        assert!(ok.is_ok());
    }

    #[test]
    fn parallel_runs_default_to_two_on_the_cpu_and_one_on_a_gpu() {
        let mut m = ModelConfig::at("m".into());
        assert_eq!(m.runs(), if cores() >= 2 { 2 } else { 1 });
        m.provider = Provider::Cuda;
        assert_eq!(m.runs(), 1);
        m.parallel_runs = Some(3);
        assert_eq!(m.runs(), 3);
    }

    #[test]
    fn the_deployment_configurations_parse() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let env = |v: &str| (v == "AKIDB_KEY").then(|| "0123456789abcdef0123".to_string());
        for (file, provider) in
            [("akidb-cpu.toml", Provider::Cpu), ("akidb-cuda.toml", Provider::Cuda)]
        {
            let c = Config::load(&deploy.join(file), &env).expect(file);
            assert_eq!(c.models_dir.as_deref(), Some(Path::new("/models")), "{file}");
            assert_eq!(c.models_dir_provider, provider, "{file}");
            assert_eq!(c.listen.port(), 8080);
        }
        let chart = deploy.join("helm/akidb/files/akidb.toml");
        let text = std::fs::read_to_string(&chart).expect("chart configuration");
        // The chart fills in its models; the rest must parse as it stands.
        let c = Config::from_toml(&text, &env).expect("chart configuration parses");
        assert_eq!(c.data_dir, Path::new("/var/lib/akidb/db"));
    }

    #[test]
    fn relative_paths_are_taken_from_the_files_directory_and_local_use_needs_no_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("akidb.toml");
        let text = "listen = \"0.0.0.0:1\"\ndata_dir = \"db\"\nbackup_dir = \"/abs/b\"\n\
                    [models.m]\ndir = \"models/m\"\n";
        std::fs::write(&path, text).expect("write");
        // No keys: a server refuses it, local use does not.
        let err = Config::load(&path, &|_| None).expect_err("no keys");
        assert!(err.contains("akidb.toml") && err.contains("no API keys"), "{err}");
        let c = Config::load_local(&path).expect("local");
        assert_eq!(c.data_dir, dir.path().join("db"));
        assert_eq!(c.backup_dir.as_deref(), Some(Path::new("/abs/b")));
        assert_eq!(c.models["m"].dir, dir.path().join("models/m"));
        // The other checks still apply locally.
        std::fs::write(&path, "listen = \"0.0.0.0:1\"\ndata_dir = \"db\"\ntypo = 1\n")
            .expect("write");
        assert!(Config::load_local(&path).expect_err("typo").contains("unknown field"));
        let missing = Config::load_local(&dir.path().join("nope.toml")).expect_err("missing");
        assert!(missing.contains("nope.toml"), "{missing}");
    }
}
