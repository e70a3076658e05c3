//! Top Shot's public GraphQL API (`https://public-api.nbatopshot.com/graphql`, no key): who a
//! moment shows, looked up by its Flow id with `getMintedMoment`, in the field names of the
//! public schema. A moment's identity never changes, so each is asked for once per feed.

use chrono::{DateTime, Utc};
use fastbreak_market_sim::Tier;
use serde_json::{Value, json};

use crate::feed::FeedError;

/// The query: only the fields a moment's identity needs.
const MOMENT_QUERY: &str = "query($momentId: ID!) { getMintedMoment(momentId: $momentId) { data { \
    flowId flowSerialNumber tier set { flowName } setPlay { circulationCount } \
    play { stats { playerID playerName jerseyNumber teamAtMoment primaryPosition totalYearsExperience dateOfMoment playCategory } } } } }";

/// A page of sales, oldest first: every field a comparable needs, the moment's identity inline.
const SALES_QUERY: &str = "query($cursor: Cursor!, $limit: Int!) { searchMarketplaceTransactions(input: { \
    sortBy: UPDATED_AT_ASC, searchInput: { pagination: { cursor: $cursor, direction: RIGHT, limit: $limit } } }) { \
    data { searchSummary { pagination { rightCursor } data { ... on MarketplaceTransactions { data { \
    id price updatedAt txHash seller { flowAddress } buyer { flowAddress } moment { \
    flowId flowSerialNumber tier set { flowName } setPlay { circulationCount } \
    play { stats { playerID playerName jerseyNumber teamAtMoment primaryPosition totalYearsExperience dateOfMoment playCategory } } \
    } } } } } } } }";

/// A sale of Top Shot's marketplace.
#[derive(Debug, Clone, PartialEq)]
pub struct TopShotSale {
    /// The transaction's id.
    pub id: String,
    /// The price, in cents.
    pub price_cents: i64,
    /// When it was settled.
    pub sold_at: DateTime<Utc>,
    /// The seller's Flow address.
    pub seller: String,
    /// The buyer's Flow address.
    pub buyer: String,
    /// The moment, when it is one the catalog can hold.
    pub moment: Option<MomentIdentity>,
}

/// Who and what a moment shows.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentIdentity {
    /// The moment's Flow id.
    pub flow_id: u64,
    /// The player's NBA id.
    pub player_id: String,
    /// The player's name.
    pub player_name: String,
    /// His jersey number, when known.
    pub jersey: Option<i32>,
    /// His team's three-letter code.
    pub team_code: String,
    /// His position.
    pub position: String,
    /// Seasons played, counting the moment's.
    pub seasons_played: i32,
    /// The set.
    pub set_name: String,
    /// The play, such as "Dunk".
    pub play_category: String,
    /// When the play happened.
    pub play_at: DateTime<Utc>,
    /// Tier.
    pub tier: Tier,
    /// Serial number.
    pub serial: i32,
    /// How many moments of the edition exist.
    pub circulation: i32,
}

/// The GraphQL API.
#[derive(Debug, Clone)]
pub struct TopShotApi {
    url: String,
    http: reqwest::Client,
}

impl TopShotApi {
    /// The API at `url`, each request given up after `timeout`.
    pub fn new(url: &str, timeout: std::time::Duration) -> Self {
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Self { url: url.to_owned(), http }
    }

    /// Asks the API; the JSON answer, or why there is none.
    async fn ask(&self, body: &Value) -> Result<Value, FeedError> {
        let response = self
            .http
            .post(&self.url)
            .json(body)
            .send()
            .await
            .map_err(|e| FeedError(format!("Top Shot's GraphQL API at {} cannot be reached: {e}", self.url)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| FeedError(format!("Top Shot's GraphQL API: {e}")))?;
        if !status.is_success() {
            let start: String = text.chars().take(200).collect();
            return Err(FeedError(format!("Top Shot's GraphQL API answered {status}: {start}")));
        }
        serde_json::from_str(&text).map_err(|e| FeedError(format!("Top Shot's GraphQL API answered no JSON: {e}")))
    }

    /// A page of at most `limit` sales after `cursor` (empty: the first), oldest first, and the
    /// cursor after it. A sale whose fields cannot be read is passed over with a warning.
    pub async fn sales_page(&self, cursor: &str, limit: u32) -> Result<(Vec<TopShotSale>, String), FeedError> {
        let body = json!({"query": SALES_QUERY, "variables": {"cursor": cursor, "limit": limit}});
        let value = self.ask(&body).await?;
        let summary = &value["data"]["searchMarketplaceTransactions"]["data"]["searchSummary"];
        if summary.is_null() {
            return Err(FeedError(format!("Top Shot's GraphQL API gave no sales: {}", value["errors"])));
        }
        let right = summary["pagination"]["rightCursor"].as_str().unwrap_or(cursor).to_owned();
        let mut sales = Vec::new();
        for row in summary["data"]["data"].as_array().map(Vec::as_slice).unwrap_or_default() {
            match sale(row) {
                Ok(sale) => sales.push(sale),
                Err(problem) => {
                    tracing::warn!(id = %row["id"], %problem, "a Top Shot sale cannot be read; passed over")
                }
            }
        }
        Ok((sales, right))
    }

    /// A moment's identity; `Ok(None)` when the API does not know the moment (or shows one this
    /// catalog cannot hold), an error when the API could not be asked.
    pub async fn moment(&self, flow_id: u64) -> Result<Option<MomentIdentity>, FeedError> {
        let body = json!({"query": MOMENT_QUERY, "variables": {"momentId": flow_id.to_string()}});
        let value = self.ask(&body).await?;
        let moment = &value["data"]["getMintedMoment"]["data"];
        if moment.is_null() {
            tracing::warn!(flow_id, errors = %value["errors"], "Top Shot does not know the moment");
            return Ok(None);
        }
        match identity(flow_id, moment) {
            Ok(identity) => Ok(Some(identity)),
            Err(problem) => {
                tracing::warn!(flow_id, %problem, "a moment Top Shot shows cannot be catalogued");
                Ok(None)
            }
        }
    }
}

/// Reads a `MarketplaceTransaction`.
fn sale(row: &Value) -> Result<TopShotSale, String> {
    let text =
        |value: &Value, name: &str| value.as_str().map(str::to_owned).ok_or_else(|| format!("{name} is missing"));
    let price = text(&row["price"], "price")?;
    let updated = text(&row["updatedAt"], "updatedAt")?;
    let flow_id = text(&row["moment"]["flowId"], "moment.flowId")?
        .parse::<u64>()
        .map_err(|_| format!("moment.flowId is not a Flow id: {}", row["moment"]["flowId"]))?;
    let address = |value: &Value, name: &str| {
        let a = text(value, name)?.to_ascii_lowercase();
        let a = if a.starts_with("0x") { a } else { format!("0x{a}") };
        (a.len() == 18 && a[2..].bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(a)
            .ok_or_else(|| format!("{name} is not a Flow address"))
    };
    Ok(TopShotSale {
        id: text(&row["id"], "id")?,
        price_cents: fastbreak_flow::cdc::ufix64_to_cents(&price)?,
        sold_at: DateTime::parse_from_rfc3339(&updated)
            .map_err(|e| format!("updatedAt {updated:?}: {e}"))?
            .with_timezone(&Utc),
        seller: address(&row["seller"]["flowAddress"], "seller.flowAddress")?,
        buyer: address(&row["buyer"]["flowAddress"], "buyer.flowAddress")?,
        moment: identity(flow_id, &row["moment"]).ok(),
    })
}

/// Reads a `MintedMoment`.
fn identity(flow_id: u64, moment: &Value) -> Result<MomentIdentity, String> {
    let stats = &moment["play"]["stats"];
    let text =
        |value: &Value, name: &str| value.as_str().map(str::to_owned).ok_or_else(|| format!("{name} is missing"));
    let number = |value: &Value, name: &str| -> Result<i32, String> {
        match value {
            Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("{name} is not a whole number: {value}"))
    };
    let team = text(&stats["teamAtMoment"], "play.stats.teamAtMoment")?;
    let date = text(&stats["dateOfMoment"], "play.stats.dateOfMoment")?;
    let tier = match moment["tier"].as_str().unwrap_or_default() {
        "MOMENT_TIER_COMMON" => Tier::Common,
        "MOMENT_TIER_FANDOM" => Tier::Fandom,
        "MOMENT_TIER_RARE" => Tier::Rare,
        "MOMENT_TIER_LEGENDARY" => Tier::Legendary,
        "MOMENT_TIER_ULTIMATE" => Tier::Ultimate,
        other => return Err(format!("tier {other:?} is not one FastBreak values")),
    };
    let serial = number(&moment["flowSerialNumber"], "flowSerialNumber")?;
    let circulation = number(&moment["setPlay"]["circulationCount"], "setPlay.circulationCount")?;
    if serial < 1 || serial > circulation {
        return Err(format!("serial {serial} is not within its edition of {circulation}"));
    }
    Ok(MomentIdentity {
        flow_id,
        player_id: format!("nba-{}", text(&stats["playerID"], "play.stats.playerID")?),
        player_name: text(&stats["playerName"], "play.stats.playerName")?,
        jersey: number(&stats["jerseyNumber"], "jerseyNumber").ok().filter(|j| (0..=99).contains(j)),
        team_code: team_code(&team).ok_or_else(|| format!("team {team:?} is not an NBA team"))?.to_owned(),
        position: stats["primaryPosition"].as_str().unwrap_or("").to_owned(),
        seasons_played: number(&stats["totalYearsExperience"], "totalYearsExperience").unwrap_or(0).max(0) + 1,
        set_name: text(&moment["set"]["flowName"], "set.flowName")?,
        play_category: stats["playCategory"].as_str().unwrap_or("Play").to_owned(),
        play_at: DateTime::parse_from_rfc3339(&date)
            .map_err(|e| format!("dateOfMoment {date:?}: {e}"))?
            .with_timezone(&Utc),
        tier,
        serial,
        circulation,
    })
}

/// An NBA team's three-letter code from its full name, as `teamAtMoment` gives it.
pub fn team_code(name: &str) -> Option<&'static str> {
    const TEAMS: [(&str, &str); 30] = [
        ("Atlanta Hawks", "ATL"),
        ("Boston Celtics", "BOS"),
        ("Brooklyn Nets", "BKN"),
        ("Charlotte Hornets", "CHA"),
        ("Chicago Bulls", "CHI"),
        ("Cleveland Cavaliers", "CLE"),
        ("Dallas Mavericks", "DAL"),
        ("Denver Nuggets", "DEN"),
        ("Detroit Pistons", "DET"),
        ("Golden State Warriors", "GSW"),
        ("Houston Rockets", "HOU"),
        ("Indiana Pacers", "IND"),
        ("LA Clippers", "LAC"),
        ("Los Angeles Lakers", "LAL"),
        ("Memphis Grizzlies", "MEM"),
        ("Miami Heat", "MIA"),
        ("Milwaukee Bucks", "MIL"),
        ("Minnesota Timberwolves", "MIN"),
        ("New Orleans Pelicans", "NOP"),
        ("New York Knicks", "NYK"),
        ("Oklahoma City Thunder", "OKC"),
        ("Orlando Magic", "ORL"),
        ("Philadelphia 76ers", "PHI"),
        ("Phoenix Suns", "PHX"),
        ("Portland Trail Blazers", "POR"),
        ("Sacramento Kings", "SAC"),
        ("San Antonio Spurs", "SAS"),
        ("Toronto Raptors", "TOR"),
        ("Utah Jazz", "UTA"),
        ("Washington Wizards", "WAS"),
    ];
    let name = if name == "Los Angeles Clippers" { "LA Clippers" } else { name };
    TEAMS.iter().find(|(team, _)| *team == name).map(|(_, code)| *code)
}
