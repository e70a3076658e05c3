//! The marketplace service's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::Reader;

use crate::flow_feed::FlowFeedConfig;

/// How the marketplace watches its sources and feeds its streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Whether the built-in simulator is a source (its two marketplaces).
    pub simulator: bool,
    /// NBA Top Shot's marketplace on Flow, when it is a source.
    pub flow: Option<FlowFeedConfig>,
    /// With `flow`: whether Top Shot's recorded sales (GraphQL) are a source too.
    pub topshot_sales: bool,
    /// With `flow`: the NBA's live data (box scores), when it is read.
    pub nba_live_data: Option<String>,
    /// The simulator's seed: the same seed, the same market.
    pub simulator_seed: u64,
    /// Real time per simulated hour; zero runs the simulation as fast as it can be ingested.
    pub simulator_tick: Duration,
    /// A source that does not answer within this is marked stalled (and polled again).
    pub stall_timeout: Duration,
    /// The pause before polling a failed source again.
    pub retry_pause: Duration,
    /// How often a stream looks for events written by other replicas, when nothing wakes it.
    pub stream_poll: Duration,
    /// The bounds of the streams: per caller, in all, their lifetime and idle time.
    pub streams: fastbreak_mesh::tail::Limits,
    /// Whether this target ingests (replicas may leave ingestion to one of them).
    pub ingest_enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            simulator: true,
            flow: None,
            topshot_sales: true,
            nba_live_data: None,
            simulator_seed: 7,
            simulator_tick: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
            retry_pause: Duration::from_secs(2),
            stream_poll: Duration::from_millis(500),
            streams: fastbreak_mesh::tail::Limits::default(),
            ingest_enabled: true,
        }
    }
}

impl Settings {
    /// Reads `FASTBREAK_MARKET` and the `FASTBREAK_MARKET_*`, `FASTBREAK_SIMULATOR_*` and
    /// `FASTBREAK_FLOW_*` variables, noting problems in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self { streams: fastbreak_mesh::tail::Limits::read(reader), ..Self::default() };
        let ms = Duration::from_millis;
        if reader.is_set("FASTBREAK_SIMULATOR") {
            reader.problem(
                "FASTBREAK_SIMULATOR",
                "is no longer read: name the market's feeds in FASTBREAK_MARKET instead (simulator, flow, or simulator,flow; none for no feed)",
            );
        }
        let feeds = reader
            .optional("FASTBREAK_MARKET", "simulator, flow, simulator,flow or none", parse_market)
            .unwrap_or((true, false));
        settings.simulator = feeds.0;
        if feeds.1 {
            settings.flow = Some(read_flow(reader));
        }
        if let Some(on) = reader.optional_switch("FASTBREAK_TOPSHOT_SALES") {
            settings.topshot_sales = on;
        }
        if feeds.1 {
            let url = |v: &str| (v.starts_with("http://") || v.starts_with("https://")).then(|| v.to_owned());
            let base = reader.optional("FASTBREAK_NBA_LIVE_DATA", "an http(s) URL, or off", |v| {
                if v == "off" { Some(None) } else { url(v).map(Some) }
            });
            settings.nba_live_data =
                base.unwrap_or_else(|| Some("https://cdn.nba.com/static/json/liveData".to_owned()));
        }
        if let Some(seed) = reader.optional("FASTBREAK_SIMULATOR_SEED", "a whole number", |v| v.parse().ok()) {
            settings.simulator_seed = seed;
        }
        reader.set_duration(
            "FASTBREAK_SIMULATOR_TICK",
            "a duration from 0s (as fast as possible) to 1h, such as 5s",
            Duration::ZERO..=ms(3_600_000),
            &mut settings.simulator_tick,
        );
        reader.set_duration(
            "FASTBREAK_MARKET_STALL_TIMEOUT",
            "a duration from 100ms to 10m, such as 30s",
            ms(100)..=ms(600_000),
            &mut settings.stall_timeout,
        );
        if let Some(on) = reader.optional_switch("FASTBREAK_MARKET_INGEST") {
            settings.ingest_enabled = on;
        }
        settings
    }
}

/// `FASTBREAK_MARKET`: the feeds, by name, separated by commas; `none` for none.
fn parse_market(text: &str) -> Option<(bool, bool)> {
    if text.trim() == "none" {
        return Some((false, false));
    }
    let mut feeds = (false, false);
    for name in text.split(',').map(str::trim) {
        let seen = match name {
            "simulator" => std::mem::replace(&mut feeds.0, true),
            "flow" => std::mem::replace(&mut feeds.1, true),
            _ => return None,
        };
        if seen {
            return None;
        }
    }
    Some(feeds)
}

/// The Flow feed's variables.
fn read_flow(reader: &mut Reader) -> FlowFeedConfig {
    let mut config = FlowFeedConfig {
        access_node: "access.mainnet.nodes.onflow.org:9000".to_owned(),
        graphql_url: "https://public-api.nbatopshot.com/graphql".to_owned(),
        start_height: None,
        range_cap: 250,
        poll: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
    };
    let host_port = |v: &str| {
        let (host, port) = v.rsplit_once(':')?;
        (!host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)).then(|| v.to_owned())
    };
    if let Some(node) = reader.optional("FASTBREAK_FLOW_ACCESS", "an access node as host:port", host_port) {
        config.access_node = node;
    }
    let url = |v: &str| (v.starts_with("http://") || v.starts_with("https://")).then(|| v.to_owned());
    if let Some(url) = reader.optional("FASTBREAK_TOPSHOT_GRAPHQL", "an http(s) URL", url) {
        config.graphql_url = url;
    }
    config.start_height = reader.optional("FASTBREAK_FLOW_START_HEIGHT", "a block height", |v| v.parse().ok());
    if let Some(cap) = reader.optional("FASTBREAK_FLOW_RANGE", "a whole number of blocks from 1 to 250", |v| {
        v.parse::<u64>().ok().filter(|n| (1..=250).contains(n))
    }) {
        config.range_cap = cap;
    }
    let ms = Duration::from_millis;
    reader.set_duration(
        "FASTBREAK_FLOW_POLL",
        "a duration from 100ms to 1m, such as 2s",
        ms(100)..=ms(60_000),
        &mut config.poll,
    );
    reader.set_duration(
        "FASTBREAK_FLOW_TIMEOUT",
        "a duration from 1s to 2m, such as 10s",
        ms(1_000)..=ms(120_000),
        &mut config.timeout,
    );
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let mut reader = Reader::new([("FASTBREAK_SIMULATOR_TICK", "2h"), ("FASTBREAK_SIMULATOR_SEED", "x")]);
        let _ = Settings::read(&mut reader);
        let text = reader.finish().unwrap_err().to_string();
        assert!(text.contains("FASTBREAK_SIMULATOR_TICK"), "{text}");
        assert!(text.contains("FASTBREAK_SIMULATOR_SEED: expected a whole number, got 'x'"), "{text}");
        let mut reader = Reader::new([("FASTBREAK_SIMULATOR_TICK", "0s"), ("FASTBREAK_MARKET", "none")]);
        let settings = Settings::read(&mut reader);
        reader.finish().unwrap();
        assert_eq!(
            (settings.simulator_tick, settings.simulator, settings.flow.is_some()),
            (Duration::ZERO, false, false)
        );
    }

    #[test]
    fn the_market_is_one_setting_and_the_old_switch_is_refused_with_the_new_name() {
        let read = |vars: &[(&str, &str)]| {
            let mut reader = Reader::new(vars.iter().copied());
            let settings = Settings::read(&mut reader);
            reader.finish().map(|()| settings).map_err(|e| e.to_string())
        };
        let default = read(&[]).unwrap();
        assert_eq!((default.simulator, default.flow.is_some()), (true, false), "the simulator by default");
        let both =
            read(&[("FASTBREAK_MARKET", "simulator, flow"), ("FASTBREAK_FLOW_ACCESS", "127.0.0.1:3569")]).unwrap();
        let flow = both.flow.unwrap();
        assert!(both.simulator);
        assert_eq!((flow.access_node.as_str(), flow.range_cap), ("127.0.0.1:3569", 250));
        assert_eq!(flow.graphql_url, "https://public-api.nbatopshot.com/graphql");
        let only_flow = read(&[("FASTBREAK_MARKET", "flow"), ("FASTBREAK_FLOW_START_HEIGHT", "85000000")]).unwrap();
        assert_eq!((only_flow.simulator, only_flow.flow.unwrap().start_height), (false, Some(85_000_000)));

        let old = read(&[("FASTBREAK_SIMULATOR", "off")]).unwrap_err();
        assert!(old.contains("FASTBREAK_SIMULATOR") && old.contains("FASTBREAK_MARKET"), "{old}");
        for bad in ["sim", "flow,flow", "simulator,", "none,flow"] {
            let error = read(&[("FASTBREAK_MARKET", bad)]).unwrap_err();
            assert!(error.contains("FASTBREAK_MARKET"), "{bad:?}: {error}");
        }
        let error =
            read(&[("FASTBREAK_MARKET", "flow"), ("FASTBREAK_FLOW_ACCESS", "nohost"), ("FASTBREAK_FLOW_RANGE", "251")])
                .unwrap_err();
        assert!(error.contains("FASTBREAK_FLOW_ACCESS") && error.contains("FASTBREAK_FLOW_RANGE"), "{error}");
    }
}
