//! A client of the dashboard as a browser is one: plain HTTP/1.1 requests, the cookies it was
//! given sent back, redirects not followed (so that tests see them), and every form sent with
//! the CSRF value its page carried.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// One answer of the dashboard.
#[derive(Debug, Clone)]
pub struct Page {
    /// The HTTP status.
    pub status: u16,
    /// Where a redirect goes.
    pub location: Option<String>,
    /// The `Set-Cookie` headers, whole.
    pub set_cookies: Vec<String>,
    /// Every header.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: String,
}

impl Page {
    /// The `Set-Cookie` header that sets `name`, if any.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies.iter().map(String::as_str).find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The header `name`, when it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A visitor of the dashboard with its cookie jar.
#[derive(Debug, Clone)]
pub struct WebClient {
    http: reqwest::Client,
    base: String,
    /// The cookies kept, by name.
    pub cookies: BTreeMap<String, String>,
}

impl WebClient {
    /// A visitor of the dashboard at `addr`, with no cookies yet.
    pub fn new(addr: SocketAddr) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Self { http, base: format!("http://{addr}"), cookies: BTreeMap::new() }
    }

    fn jar(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.cookies.is_empty() { request } else { request.header("cookie", self.jar()) };
        let response = request.send().await.expect("the dashboard answers");
        let status = response.status().as_u16();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Page { status, location, set_cookies, headers, body }
    }

    /// GET `path`.
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// POSTs a form to `path` with the visitor's CSRF value (from its cookie) added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if let Some(csrf) = self.cookies.get(fastbreak_web::CSRF_COOKIE) {
            form.push(("csrf".to_owned(), csrf.clone()));
        }
        self.post_as_is(path, &form, &[]).await
    }

    /// POSTs exactly these fields, with these extra headers (a forged form, say).
    pub async fn post_as_is(&mut self, path: &str, fields: &[(String, String)], headers: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Opens the sign-up page (for the CSRF cookie), signs up and follows to the portfolio.
    pub async fn sign_up(&mut self, name: &str, email: &str, password: &str) -> Page {
        let page = self.get("/sign-up").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let created = self.post("/sign-up", &[("display_name", name), ("email", email), ("password", password)]).await;
        assert_eq!((created.status, created.location.as_deref()), (303, Some("/portfolio")), "{}", created.body);
        created
    }
}

/// The value of a hidden field `name` in a page, the first one.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}
