//! Who is visiting: the session cookie (the access token the sign-in made), the CSRF cookie
//! every form carries back, the operator's credential when one was given, and the visitor's
//! address (which the gateway limits as the visitor's own).

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::response::Response;
use base64::Engine as _;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};

/// The session cookie: `<token id>.<token secret>` of the access token the sign-in made.
pub const SESSION_COOKIE: &str = "fastbreak_session";
/// The CSRF cookie: a random value every form sends back in its `csrf` field.
pub const CSRF_COOKIE: &str = "fastbreak_csrf";
/// The operator's credential, once given on the operators' page.
pub const OPERATOR_COOKIE: &str = "fastbreak_operator";

/// A signed-in visitor's access token.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its id, to revoke it at sign-out.
    pub token_id: String,
    /// The secret the gateway authenticates.
    pub secret: String,
}

impl Session {
    /// The cookie's value.
    pub fn cookie_value(&self) -> String {
        format!("{}.{}", self.token_id, self.secret)
    }

    fn parse(value: &str) -> Option<Self> {
        let (token_id, secret) = value.split_once('.')?;
        let fits = |text: &str| !text.is_empty() && text.len() <= 256;
        (fits(token_id) && fits(secret)).then(|| Self { token_id: token_id.to_owned(), secret: secret.to_owned() })
    }
}

/// Who is asking, read from the request's cookies and connection.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The signed-in session, if any.
    pub session: Option<Session>,
    /// The CSRF value of the visitor's forms.
    pub csrf: String,
    /// True when the CSRF cookie is new (made for this answer, to be set by it).
    pub csrf_is_new: bool,
    /// The operator's credential, if given.
    pub operator: Option<String>,
    /// The visitor's address, as the connection says.
    pub address: Option<IpAddr>,
    /// The request's own origin (`http://host:port`), to compare a form's `Origin` with.
    pub host: Option<String>,
}

/// The cookies a request carries, by name (the first of each name).
fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// The operator cookie's value for a credential (base64, so that any credential fits a cookie).
pub fn encode_operator(credential: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(credential)
}

fn decode_operator(value: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok()?;
    String::from_utf8(bytes).ok().filter(|text| !text.is_empty() && text.len() <= 512)
}

/// A fresh random value for a CSRF cookie.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let jar = cookies(&parts.headers);
        let named = |name: &str| jar.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let csrf = named(CSRF_COOKIE).filter(|value| (20..=100).contains(&value.len()));
        let csrf_is_new = csrf.is_none();
        let address = parts
            .extensions
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr())
            .map(|addr| addr.ip());
        Ok(Self {
            session: named(SESSION_COOKIE).as_deref().and_then(Session::parse),
            csrf: csrf.unwrap_or_else(random_token),
            csrf_is_new,
            operator: named(OPERATOR_COOKIE).as_deref().and_then(decode_operator),
            address,
            // HTTP/1.1 names the host in `Host`; HTTP/2 in `:authority`, which is the URI's.
            host: parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned())),
        })
    }
}

/// Why a form was refused as not coming from the dashboard's own pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forged {
    /// The browser says the form was sent from another site.
    OtherOrigin(String),
    /// The form's CSRF field is missing or does not match the visitor's cookie.
    TokenMismatch,
}

impl Visitor {
    /// Checks that a form comes from the dashboard's own pages: the browser's `Origin` (or
    /// `Sec-Fetch-Site`) names this site, and the form's `csrf` field matches the cookie.
    pub fn check_form(&self, headers: &HeaderMap, csrf_field: Option<&str>) -> Result<(), Forged> {
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
            && site == "cross-site"
        {
            return Err(Forged::OtherOrigin("another site".to_owned()));
        }
        if let Some(origin) = headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let host_of_origin = origin.split_once("://").map(|(_, rest)| rest);
            if origin == "null" || host_of_origin.is_none() || host_of_origin != self.host.as_deref() {
                return Err(Forged::OtherOrigin(origin.to_owned()));
            }
        }
        let matches = csrf_field.is_some_and(|field| {
            !self.csrf_is_new && fastbreak_mesh::auth::same_secret(field.as_bytes(), self.csrf.as_bytes())
        });
        if matches { Ok(()) } else { Err(Forged::TokenMismatch) }
    }
}

/// How the dashboard's cookies are made.
#[derive(Debug, Clone, Copy)]
pub struct CookieRules {
    /// Whether they carry `Secure`.
    pub secure: bool,
    /// How long the session cookie lasts, in seconds.
    pub session_seconds: u64,
}

impl CookieRules {
    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, the whole site, and `Secure` when
    /// the deployment says so; `max_age` none for a cookie that ends with the browser session.
    pub fn set(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        HeaderValue::from_str(&cookie).expect("cookie values are base64, UUIDs and token text")
    }

    /// A `Set-Cookie` value that removes a cookie.
    pub fn clear(&self, name: &str) -> HeaderValue {
        self.set(name, "", Some(0))
    }

    /// Adds the visitor's CSRF cookie to an answer when it is new.
    pub fn with_csrf(&self, visitor: &Visitor, mut response: Response) -> Response {
        if visitor.csrf_is_new {
            response.headers_mut().append(http::header::SET_COOKIE, self.set(CSRF_COOKIE, &visitor.csrf, None));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(csrf: &str, new: bool) -> Visitor {
        Visitor {
            session: None,
            csrf: csrf.to_owned(),
            csrf_is_new: new,
            operator: None,
            address: None,
            host: Some("127.0.0.1:50060".to_owned()),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_form_needs_its_cookie_value_and_its_own_origin() {
        let token = "a-csrf-token-of-enough-length-0123";
        let known = visitor(token, false);
        assert_eq!(known.check_form(&headers(&[]), Some(token)), Ok(()));
        assert_eq!(known.check_form(&headers(&[("origin", "http://127.0.0.1:50060")]), Some(token)), Ok(()));
        assert_eq!(known.check_form(&headers(&[]), Some("another")), Err(Forged::TokenMismatch));
        assert_eq!(known.check_form(&headers(&[]), None), Err(Forged::TokenMismatch));
        assert!(matches!(
            known.check_form(&headers(&[("origin", "http://evil.example")]), Some(token)),
            Err(Forged::OtherOrigin(_))
        ));
        assert!(matches!(known.check_form(&headers(&[("origin", "null")]), Some(token)), Err(Forged::OtherOrigin(_))));
        assert!(matches!(
            known.check_form(&headers(&[("sec-fetch-site", "cross-site")]), Some(token)),
            Err(Forged::OtherOrigin(_))
        ));
        // A cookie made for this very answer was never seen by a form.
        assert_eq!(visitor(token, true).check_form(&headers(&[]), Some(token)), Err(Forged::TokenMismatch));
    }

    #[tokio::test]
    async fn over_http2_the_site_is_the_requests_authority() {
        // HTTP/2 sends no Host header: the host is the URI's authority (`:authority`).
        let request = http::Request::builder()
            .uri("http://dash.example:50060/budget/stop")
            .header(http::header::COOKIE, "fastbreak_csrf=a-csrf-token-of-enough-length-0123")
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        let Ok(visitor) = Visitor::from_request_parts(&mut parts, &()).await;
        let ours = headers(&[("origin", "http://dash.example:50060")]);
        assert_eq!(visitor.check_form(&ours, Some("a-csrf-token-of-enough-length-0123")), Ok(()));
        let theirs = headers(&[("origin", "http://evil.example")]);
        assert!(matches!(
            visitor.check_form(&theirs, Some("a-csrf-token-of-enough-length-0123")),
            Err(Forged::OtherOrigin(_))
        ));
    }

    #[test]
    fn cookies_carry_their_flags_and_secure_only_when_asked() {
        let plain = CookieRules { secure: false, session_seconds: 60 }.set(SESSION_COOKIE, "a.b", Some(60));
        assert_eq!(plain, "fastbreak_session=a.b; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        let secure = CookieRules { secure: true, session_seconds: 60 }.set(CSRF_COOKIE, "x", None);
        assert_eq!(secure, "fastbreak_csrf=x; Path=/; HttpOnly; SameSite=Strict; Secure");
    }

    #[test]
    fn a_session_cookie_is_an_id_and_a_secret() {
        let session = Session::parse("1234.s3cr3t").unwrap();
        assert_eq!((session.token_id.as_str(), session.secret.as_str()), ("1234", "s3cr3t"));
        assert!(Session::parse("nodot").is_none() && Session::parse(".x").is_none());
    }
}
