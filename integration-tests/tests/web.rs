//! The dashboard over real HTTP in front of the real mesh: its cookies and their flags (both
//! ways of the Secure setting), CSRF on every form, one collector's pages never showing
//! another's data, each page answering, and a part of the system that is down named on the
//! page while the other pages work.

use fastbreak_integration_tests::TestMesh;
use fastbreak_integration_tests::web::{WebClient, hidden};

const PASSWORD: &str = "correct horse battery staple";

/// Every target but the market's feed (the pages need no listings here).
async fn mesh(extra: &[(&str, &str)]) -> TestMesh {
    let mut vars = vec![("FASTBREAK_MARKET", "none")];
    vars.extend_from_slice(extra);
    TestMesh::spawn_with("all", &vars).await
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_are_http_only_and_strict_and_secure_only_when_the_setting_says() {
    for (setting, secure) in [("off", false), ("on", true)] {
        let mesh = mesh(&[("FASTBREAK_WEB_SECURE_COOKIES", setting)]).await;
        let mut visitor = WebClient::new(mesh.addr("web"));
        let first = visitor.get("/sign-up").await;
        let csrf = first.cookie(fastbreak_web::CSRF_COOKIE).expect("a CSRF cookie on the first page");
        let created = visitor.sign_up("Ada", &format!("ada-{setting}@example.com"), PASSWORD).await;
        let session = created.cookie(fastbreak_web::SESSION_COOKIE).expect("a session cookie at sign-up");
        for cookie in [csrf, session] {
            assert!(cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"), "{cookie}");
            assert_eq!(cookie.contains("; Secure"), secure, "FASTBREAK_WEB_SECURE_COOKIES={setting}: {cookie}");
        }
        assert!(session.contains("; Max-Age=604800"), "a week by default: {session}");
    }
}

/// The portfolio asked for with these cookies until the session is refused (10 s at most): the
/// gateway trusts a token it authenticated for a short while (its cache).
async fn portfolio_once_revoked(
    web: std::net::SocketAddr,
    cookies: std::collections::BTreeMap<String, String>,
) -> fastbreak_integration_tests::web::Page {
    let mut visitor = WebClient::new(web);
    visitor.cookies = cookies;
    let mut page = visitor.get("/portfolio").await;
    for _ in 0..20 {
        if page.status == 303 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        page = visitor.get("/portfolio").await;
    }
    page
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_answers_and_sign_out_revokes_the_token() {
    let mesh = mesh(&[("FASTBREAK_GATEWAY_TOKEN_CACHE_TTL", "200ms")]).await;
    let mut visitor = WebClient::new(mesh.addr("web"));
    let anonymous = visitor.get("/portfolio").await;
    assert_eq!((anonymous.status, anonymous.location.as_deref()), (303, Some("/sign-in")), "signed out: to sign in");
    visitor.sign_up("Ada", "ada@example.com", PASSWORD).await;
    for (path, heading) in [
        ("/portfolio", "Portfolio"),
        ("/decisions", "Decisions"),
        ("/strategies", "Strategies"),
        ("/backtests", "Backtests"),
        ("/budget", "Budget"),
        ("/market", "Market"),
        ("/notifications", "Notifications"),
        ("/leaderboards", "Leaderboards"),
        ("/operators", "Operators"),
    ] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains(&format!("<h1>{heading}</h1>")), "{path}: {}", page.body);
        assert!(!page.body.contains("unavailable right now"), "{path} with every part up: {}", page.body);
    }
    let missing = visitor.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("There is no page here"), "{}", missing.body);
    // Deposits: a bad amount is named beside its field; a good one shows in the cash.
    let bad = visitor.post("/portfolio/deposit", &[("amount_cents", "ten dollars"), ("key", "k1")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("amount_cents must be an amount in dollars"), "{}", bad.body);
    let good = visitor.post("/portfolio/deposit", &[("amount_cents", "1,250.50"), ("key", "k2")]).await;
    assert_eq!(good.status, 303, "{}", good.body);
    let again = visitor.post("/portfolio/deposit", &[("amount_cents", "1,250.50"), ("key", "k2")]).await;
    assert_eq!(again.status, 303, "the same form twice deposits once");
    let portfolio = visitor.get("/portfolio").await;
    assert!(portfolio.body.contains("$1,250.50"), "{}", portfolio.body);
    // The equity chart ends with the equity the summary shows (read after it, not beside it).
    assert!(
        portfolio.body.contains("Equity (cash and moments at market value) from $0.00 to $1,250.50;"),
        "{}",
        portfolio.body
    );
    // Operators: a wrong credential is refused, the right one shows every endpoint.
    let wrong = visitor.post("/operators", &[("action", "remember"), ("credential", "not-it")]).await;
    assert!(wrong.body.contains("credential is not the operator credential"), "{}", wrong.body);
    let right = visitor
        .post("/operators", &[("action", "remember"), ("credential", fastbreak_integration_tests::TEST_OPERATOR_TOKEN)])
        .await;
    assert_eq!(right.status, 303, "{}", right.body);
    let health = visitor.get("/operators").await;
    assert_eq!(health.header("cache-control"), Some("no-store"), "a visitor's pages are never cached");
    for service in ["user", "strategy", "risk", "marketplace", "scouting", "trading", "notification", "agents"] {
        assert!(health.body.contains(&format!("<strong>{service}</strong>")), "{service}: {}", health.body);
    }
    // Sign-out revokes the token: the same cookie no longer opens a page.
    let kept = visitor.cookies.clone();
    let out = visitor.post("/sign-out", &[]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/sign-in")));
    for cookie in [fastbreak_web::SESSION_COOKIE, fastbreak_web::OPERATOR_COOKIE] {
        assert!(out.cookie(cookie).is_some_and(|c| c.contains("Max-Age=0")), "{cookie}: {:?}", out.set_cookies);
    }
    assert!(kept.contains_key(fastbreak_web::OPERATOR_COOKIE), "the credential was kept before");
    let after = visitor.get("/operators").await;
    assert!(after.body.contains("give the operator credential"), "the next person is no operator: {}", after.body);
    let ended = portfolio_once_revoked(mesh.addr("web"), kept).await;
    assert_eq!((ended.status, ended.location.as_deref()), (303, Some("/sign-in?ended=1")), "a revoked session");

    // A sign-in over a session still open revokes the one it replaces.
    let first = visitor.post("/sign-in", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((first.status, first.location.as_deref()), (303, Some("/portfolio")), "{}", first.body);
    let replaced = visitor.cookies.clone();
    let second = visitor.post("/sign-in", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(second.status, 303, "{}", second.body);
    assert_ne!(visitor.cookies[fastbreak_web::SESSION_COOKIE], replaced[fastbreak_web::SESSION_COOKIE]);
    assert_eq!(visitor.get("/portfolio").await.status, 200, "the new session works");
    let answer = portfolio_once_revoked(mesh.addr("web"), replaced).await;
    assert_eq!((answer.status, answer.location.as_deref()), (303, Some("/sign-in?ended=1")), "the replaced session");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_from_another_origin_or_without_its_token_is_refused_and_not_acted_on() {
    let mesh = mesh(&[]).await;
    let mut visitor = WebClient::new(mesh.addr("web"));
    visitor.sign_up("Ada", "ada@example.com", PASSWORD).await;
    let csrf = visitor.cookies.get(fastbreak_web::CSRF_COOKIE).cloned().unwrap();
    let form = |with_token: bool| {
        let mut fields = vec![("amount_cents".to_owned(), "500".to_owned()), ("key".to_owned(), uuid())];
        if with_token {
            fields.push(("csrf".to_owned(), csrf.clone()));
        }
        fields
    };
    let cases: [(&str, Vec<(String, String)>, Vec<(&str, &str)>); 4] = [
        ("no token", form(false), vec![]),
        ("a wrong token", vec![("amount_cents".into(), "500".into()), ("csrf".into(), "x".repeat(43))], vec![]),
        ("another origin", form(true), vec![("origin", "http://evil.example")]),
        ("another site, says the browser", form(true), vec![("sec-fetch-site", "cross-site")]),
    ];
    for (what, fields, headers) in cases {
        let refused = visitor.post_as_is("/portfolio/deposit", &fields, &headers).await;
        assert_eq!(refused.status, 403, "{what}: {}", refused.body);
        assert!(refused.body.contains("it was not acted on"), "{what}: {}", refused.body);
    }
    // A form from another site carries no cookies at all (SameSite=Strict): refused too.
    let mut stranger = WebClient::new(mesh.addr("web"));
    let blind = stranger.post_as_is("/budget/stop", &[("action".into(), "engage".into())], &[]).await;
    assert_eq!(blind.status, 403);
    let portfolio = visitor.get("/portfolio").await;
    assert!(
        portfolio.body.contains("$0.00") && !portfolio.body.contains("$500.00"),
        "nothing deposited: {}",
        portfolio.body
    );
    // The same form from the dashboard itself goes through.
    let ours = visitor
        .post_as_is("/portfolio/deposit", &form(true), &[("origin", &format!("http://{}", mesh.addr("web")))])
        .await;
    assert_eq!(ours.status, 303, "{}", ours.body);
}

/// Posts `fields` as the dashboard's own form would (with the visitor's CSRF token).
async fn post(
    visitor: &mut WebClient,
    path: &str,
    fields: Vec<(String, String)>,
) -> fastbreak_integration_tests::web::Page {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    visitor.post(path, &fields).await
}

/// The backtest form's fields: `strategy` for `days` of season `seed`, each moment held 2 days,
/// with `dollars` of paper money.
fn backtest_form<'a>(strategy: &'a str, days: &'a str, seed: &'a str, dollars: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("strategy_ids", strategy),
        ("days", days),
        ("seed", seed),
        ("hold_days", "2"),
        ("starting_balance_cents", dollars),
    ]
}

/// The fields of the post-game spike template's form as its page gives them, named `name`.
fn spike_fields(form: &str, name: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = [
        "template_id",
        "priority",
        "min_confidence",
        "min_discount_bps",
        "max_price_cents",
        "max_purchases_per_day",
        "min_game_score",
        "buy_window_minutes",
        "player_ids",
    ]
    .iter()
    .map(|field| ((*field).to_owned(), hidden(form, field).unwrap_or_else(|| panic!("{field} in the form"))))
    .collect();
    fields.push(("display_name".into(), name.into()));
    fields
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_collectors_pages_never_show_anothers_data() {
    let mesh = mesh(&[]).await;
    let web = mesh.addr("web");
    let mut alice = WebClient::new(web);
    alice.sign_up("Alice", "alice@example.com", PASSWORD).await;
    let mut bob = WebClient::new(web);
    bob.sign_up("Bob", "bob@example.com", PASSWORD).await;
    // Alice makes a strategy from the first template, with a name only she knows.
    let strategies = alice.get("/strategies").await;
    let template = strategies
        .body
        .split("/strategies/new?template=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let form = alice.get(&format!("/strategies/new?template={template}")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let mut fields: Vec<(String, String)> = Vec::new();
    for name in [
        "template_id",
        "priority",
        "min_confidence",
        "min_discount_bps",
        "max_price_cents",
        "max_purchases_per_day",
        "max_seasons_played",
        "min_performance_rise_percent",
        "team_codes",
        "min_game_score",
        "buy_window_minutes",
        "player_ids",
        "min_spread_bps",
    ] {
        if let Some(value) = hidden(&form.body, name) {
            fields.push((name.to_owned(), value));
        }
    }
    fields.push(("display_name".into(), "Alice's secret plan".into()));
    // A bad value first: named beside its field, nothing created.
    let mut bad = fields.clone();
    bad.retain(|(n, _)| n != "min_confidence");
    bad.push(("min_confidence".into(), "7".into()));
    bad.push(("csrf".into(), alice.cookies[fastbreak_web::CSRF_COOKIE].clone()));
    let refused = alice.post_as_is("/strategies", &bad, &[]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("class=\"field-error\" id=\"field-min_confidence-error\""), "{}", refused.body);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let created = alice.post("/strategies", &fields).await;
    assert_eq!((created.status, created.location.as_deref()), (303, Some("/strategies")), "{}", created.body);
    let hers = alice.get("/strategies").await;
    assert!(
        hers.body.contains("Alice&#39;s secret plan") || hers.body.contains("Alice's secret plan"),
        "{}",
        hers.body
    );
    let id = hers
        .body
        .split("href=\"/strategies/")
        .find_map(|rest| {
            let id = rest.split('"').next()?;
            (id.len() == 36).then(|| id.to_owned())
        })
        .expect("her strategy's link");
    let deposited = alice.post("/portfolio/deposit", &[("amount_cents", "777.77"), ("key", "a1")]).await;
    assert_eq!(deposited.status, 303, "{}", deposited.body);
    assert!(alice.get("/portfolio").await.body.contains("$777.77"), "her deposit shows on her page");

    for path in ["/strategies", "/portfolio", "/decisions", "/budget", "/notifications"] {
        let page = bob.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("secret plan") && !page.body.contains("777.77") && !page.body.contains(&id),
            "{path}: {}",
            page.body
        );
    }
    // Her strategy named in his filter shows him nothing of hers.
    let filtered = bob.get(&format!("/decisions?strategy={id}")).await;
    assert!(!filtered.body.contains("secret plan"), "{}", filtered.body);
    let peek = bob.get(&format!("/strategies/{id}")).await;
    assert_eq!(peek.status, 404, "{}", peek.body);
    assert!(!peek.body.contains("secret plan"), "{}", peek.body);
    let meddle = bob.post(&format!("/strategies/{id}/state"), &[("action", "activate")]).await;
    assert_ne!(meddle.status, 303, "{}", meddle.body);
    assert!(alice.get("/strategies").await.body.contains("paused"), "still paused");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_trading_stopped_the_portfolio_says_so_and_the_other_pages_work() {
    // Every target but trading: the gateway's route to it has nowhere to go.
    let mesh = TestMesh::spawn_with(
        "user,strategy,risk,marketplace,scouting,notification,agents,gateway,web",
        &[("FASTBREAK_MARKET", "none")],
    )
    .await;
    let mut visitor = WebClient::new(mesh.addr("web"));
    visitor.sign_up("Ada", "ada@example.com", PASSWORD).await;
    let portfolio = visitor.get("/portfolio").await;
    assert_eq!(portfolio.status, 200, "{}", portfolio.body);
    assert!(portfolio.body.contains("Trading is unavailable right now"), "{}", portfolio.body);
    assert!(portfolio.body.contains("Deposits need trading, which is unavailable right now"), "{}", portfolio.body);
    assert!(portfolio.body.contains("Register wallet"), "the wallet (accounts) still works: {}", portfolio.body);
    for (path, works) in [
        ("/strategies", "Start from a template"),
        ("/budget", "Change your limits"),
        ("/notifications", "unread"),
        ("/decisions", "No decisions yet"),
        ("/market", "Find moments"),
    ] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains(works), "{path}: {}", page.body);
        assert!(!page.body.contains("Trading is unavailable"), "{path}: {}", page.body);
    }
    let leaderboards = visitor.get("/leaderboards").await;
    assert!(leaderboards.body.contains("Trading is unavailable right now"), "{}", leaderboards.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strategys_daily_scan_and_statistic_triggers_are_edited_with_their_mistakes_named() {
    let mesh = mesh(&[]).await;
    let mut visitor = WebClient::new(mesh.addr("web"));
    visitor.sign_up("Ada", "ada-triggers@example.com", PASSWORD).await;
    let form = visitor.get("/strategies/new?template=post-game-spike").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("id=\"field-time_of_day\"") && form.body.contains("id=\"field-stat-0\""),
        "{}",
        form.body
    );
    let base = spike_fields(&form.body, "Big nights");
    let with = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut fields = base.clone();
        fields.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        fields
    };
    let created = post(&mut visitor, "/strategies", with(&[])).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let id = visitor
        .get("/strategies")
        .await
        .body
        .split("href=\"/strategies/")
        .find_map(|rest| rest.split('"').next().filter(|id| id.len() == 36).map(str::to_owned))
        .expect("the strategy's link");
    let path = format!("/strategies/{id}");

    // The service's complaints, each beside its field: a time that is no time, a trigger too low.
    let wrong = post(
        &mut visitor,
        &path,
        with(&[
            ("time_of_day", "25:00"),
            ("time_zone", ""),
            ("stat", ""),
            ("at_least", ""),
            ("stat", "STAT_POINTS"),
            ("at_least", "30"),
            ("stat", "STAT_REBOUNDS"),
            ("at_least", "0"),
        ]),
    )
    .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.body.contains("id=\"field-time_of_day-error\">time_of_day must be a 24-hour time"), "{}", wrong.body);
    // The empty first row is set last: the complaint is beside the row with the 0 in it.
    assert!(
        wrong.body.contains(
            "id=\"field-at_least-1\" name=\"at_least\" type=\"number\" step=\"any\" value=\"0\" aria-invalid=\"true\"><span class=\"field-error\">trigger 2 must"
        ),
        "{}",
        wrong.body
    );
    // The page's own: a least value with no statistic.
    let half = post(&mut visitor, &path, with(&[("stat", ""), ("at_least", "12"), ("time_of_day", "")])).await;
    assert_eq!(half.status, 422, "{}", half.body);
    assert!(half.body.contains("trigger 1 is needed for a least value"), "{}", half.body);

    // Good values are kept, and shown when the strategy is opened again.
    let saved = post(
        &mut visitor,
        &path,
        with(&[
            ("time_of_day", "09:30"),
            ("time_zone", "America/New_York"),
            ("stat", "STAT_POINTS"),
            ("at_least", "30"),
            ("stat", ""),
            ("at_least", ""),
            ("stat", "STAT_REBOUNDS"),
            ("at_least", "10"),
        ]),
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = visitor.get(&path).await;
    for shown in [
        "value=\"09:30\"",
        "value=\"America/New_York\"",
        "<option value=\"STAT_POINTS\" selected>",
        "<option value=\"STAT_REBOUNDS\" selected>",
        "id=\"field-at_least-0\" name=\"at_least\" type=\"number\" step=\"any\" value=\"30\"",
        "id=\"field-at_least-1\" name=\"at_least\" type=\"number\" step=\"any\" value=\"10\"",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    // Saving the form as it is shown loses nothing; clearing the scan's time removes it.
    let again = post(
        &mut visitor,
        &path,
        with(&[
            ("time_of_day", ""),
            ("time_zone", ""),
            ("stat", "STAT_POINTS"),
            ("at_least", "30"),
            ("stat", "STAT_REBOUNDS"),
            ("at_least", "10"),
        ]),
    )
    .await;
    assert_eq!(again.status, 303, "{}", again.body);
    let page = visitor.get(&path).await;
    assert!(!page.body.contains("value=\"09:30\"") && page.body.contains("value=\"10\""), "{}", page.body);
    // Protections: a streak without its window is named beside the window; good values are kept,
    // and the strategy's page then offers to reset them.
    let streak = [("stat", "STAT_POINTS"), ("at_least", "30"), ("losing_streak.losing_trades", "3")];
    let half = post(&mut visitor, &path, with(&streak)).await;
    assert_eq!(half.status, 422, "{}", half.body);
    assert!(
        half.body.contains("id=\"field-losing_streak.window_minutes-error\">losing_streak.window_minutes must be between 1 and 43200 minutes"),
        "{}",
        half.body
    );
    let mut guarded = streak.to_vec();
    guarded.extend([
        ("losing_streak.window_minutes", "60"),
        ("losing_streak.pause_minutes", "120"),
        ("cooldown_after_loss.minutes", "45"),
        ("cooldown_after_loss.per_player", "on"),
        ("max_daily_loss_cents", "25.50"),
        ("blocked_set_names", "Base Set, Rookie Debut"),
    ]);
    let saved = post(&mut visitor, &path, with(&guarded)).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = visitor.get(&path).await;
    for shown in [
        "value=\"45\"",
        "value=\"120\"",
        "value=\"25.50\"",
        "value=\"Base Set, Rookie Debut\"",
        "Reset the protections",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(!page.body.contains("Last reset"), "{}", page.body);
    let reset = post(&mut visitor, &format!("{path}/state"), vec![("action".into(), "reset_protections".into())]).await;
    assert_eq!((reset.status, reset.location.as_deref()), (303, Some(path.as_str())), "{}", reset.body);
    assert!(visitor.get(&path).await.body.contains("Last reset"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backtest_runs_from_its_page_which_shows_its_figures_and_the_agents_chart() {
    let mesh = mesh(&[]).await;
    let web = mesh.addr("web");
    let mut visitor = WebClient::new(web);
    visitor.sign_up("Ada", "ada-backtests@example.com", PASSWORD).await;
    let none_yet = visitor.get("/backtests").await;
    assert_eq!(none_yet.status, 200, "{}", none_yet.body);
    assert!(none_yet.body.contains("<h1>Backtests</h1>") && none_yet.body.contains("no strategy to backtest yet"));
    // A strategy from a template, to backtest.
    let form = visitor.get("/strategies/new?template=post-game-spike").await;
    let created = post(&mut visitor, "/strategies", spike_fields(&form.body, "Spikes to test")).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let page = visitor.get("/backtests").await;
    let id = page
        .body
        .split("name=\"strategy_ids\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the strategy offered in the form")
        .to_owned();
    assert!(page.body.contains("Spikes to test"), "{}", page.body);

    // What is wrong is named beside its field: by the page, then by the agents.
    let words = visitor.post("/backtests", &backtest_form(&id, "ten", "7", "500")).await;
    assert_eq!(words.status, 422, "{}", words.body);
    assert!(words.body.contains("days must be a whole number, not &quot;ten&quot;"), "{}", words.body);
    assert!(
        words.body.contains(&format!("value=\"{id}\" checked")),
        "the strategy chosen stays chosen: {}",
        words.body
    );
    let bounds = visitor
        .post("/backtests", &[("days", "200"), ("seed", "7"), ("hold_days", "99"), ("starting_balance_cents", "500")])
        .await;
    assert_eq!(bounds.status, 422, "{}", bounds.body);
    for named in ["strategy_ids name 1 to 10 strategies", "days must be 1 to 120", "hold_days must be 0 to 60"] {
        assert!(bounds.body.contains(named), "{named}: {}", bounds.body);
    }
    let dear = visitor.post("/backtests", &backtest_form(&id, "5", "7", "20,000,000")).await;
    assert_eq!(dear.status, 422, "{}", dear.body);
    assert!(
        dear.body.contains("starting_balance_cents must be more than $0.00 and at most $10,000,000.00"),
        "in the dollars the field is in: {}",
        dear.body
    );
    assert!(visitor.get("/backtests").await.body.contains("No backtest yet."), "nothing was started by a bad form");

    // A good one runs, and its page follows it until it has succeeded.
    let started = visitor.post("/backtests", &backtest_form(&id, "5", "7", "500")).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let path = started.location.clone().expect("to the backtest's page");
    assert!(path.starts_with("/backtests/") && path.len() == "/backtests/".len() + 36, "{path}");
    let mut shown = visitor.get(&path).await;
    for _ in 0..240 {
        if !shown.body.contains("running") {
            break;
        }
        assert_eq!(shown.header("refresh"), Some("2"), "a running backtest's page asks again: {}", shown.body);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        shown = visitor.get(&path).await;
    }
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("succeeded") && shown.body.contains("5 of 5 days"), "{}", shown.body);
    assert_eq!(shown.header("refresh"), None, "a finished backtest's page stays");
    assert!(
        shown.body.contains("Every ledger was held to your budget limits: $500.00 a day, ")
            && shown.body.contains("a moment"),
        "the collector's limits (risk's defaults): {}",
        shown.body
    );
    for ledger in ["Spikes to test", "buy every listing under fair value", "hold nothing"] {
        assert!(shown.body.contains(&format!("<td>{ledger}")), "{ledger}: {}", shown.body);
    }
    assert!(
        shown.body.contains(&format!(
            "<img src=\"{path}/chart.svg\" alt=\"Equity and drawdown over 5 simulated days: Spikes to test ends at $"
        )),
        "{}",
        shown.body
    );

    // The chart is the agents' own SVG, served so that it runs nothing; the report is JSON.
    let chart = visitor.get(&format!("{path}/chart.svg")).await;
    assert_eq!(chart.status, 200, "{}", chart.body);
    assert_eq!(chart.header("content-type"), Some("image/svg+xml"));
    assert!(
        chart
            .header("content-security-policy")
            .is_some_and(|p| p.contains("default-src 'none'") && p.contains("sandbox"))
    );
    assert!(
        chart.body.starts_with("<svg") && chart.body.contains("<polyline") && chart.body.contains("Spikes to test"),
        "{}",
        chart.body
    );
    let report = visitor.get(&format!("{path}/report.json")).await;
    assert_eq!((report.status, report.header("content-type")), (200, Some("application/json")), "{}", report.body);
    let json: serde_json::Value = serde_json::from_str(&report.body).expect("the report is JSON");
    assert_eq!((json["days"].as_u64(), json["seed"].as_u64()), (Some(5), Some(7)), "{json}");
    assert_eq!(json["strategies"][0]["name"], "Spikes to test", "{json}");
    let listed = visitor.get("/backtests").await;
    assert!(listed.body.contains(&format!("href=\"{path}\"")) && listed.body.contains("succeeded"), "{}", listed.body);

    // A long one, cancelled from its page: the page says so, and a second cancel is refused.
    let long = visitor.post("/backtests", &backtest_form(&id, "120", "3", "500")).await;
    let long = long.location.clone().expect("to the long backtest's page");
    let running = visitor.get(&long).await;
    assert!(running.body.contains("Cancel the backtest"), "{}", running.body);
    let cancelled = visitor.post(&format!("{long}/cancel"), &[]).await;
    assert_eq!((cancelled.status, cancelled.location.as_deref()), (303, Some(long.as_str())), "{}", cancelled.body);
    let shown = visitor.get(&long).await;
    assert!(shown.body.contains("It was cancelled by you at "), "{}", shown.body);
    assert_eq!(shown.header("refresh"), None);
    let twice = visitor.post(&format!("{long}/cancel"), &[]).await;
    assert_eq!(twice.status, 422, "{}", twice.body);
    assert!(twice.body.contains("already ended (cancelled)"), "{}", twice.body);

    // Another collector sees none of it.
    let mut stranger = WebClient::new(web);
    stranger.sign_up("Bob", "bob-backtests@example.com", PASSWORD).await;
    let theirs = stranger.post(&format!("{long}/cancel"), &[]).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    for what in ["", "/chart.svg", "/report.json"] {
        let seen = stranger.get(&format!("{path}{what}")).await;
        assert_eq!(seen.status, 404, "{what}: {}", seen.body);
        assert!(!seen.body.contains("Spikes to test"), "{what}: {}", seen.body);
    }
    assert!(stranger.get("/backtests").await.body.contains("No backtest yet."));
}
