//! A small W3C WebDriver client for the browser tests: starts Debian's `chromedriver` on a free
//! port, opens one headless Chromium session with a temporary profile, and drives it over HTTP
//! with `reqwest` (navigate, find by CSS selector, type, click, read text, attributes, cookies
//! and the page source). Dropping a [`Browser`] ends the session and kills chromedriver.
//!
//! Without `chromium` or `chromedriver` on the `PATH`, [`Browser::start`] fails the test with a
//! message saying how to install them, unless `CHANGEGATE_SKIP_BROWSER_TESTS=1`: it then prints
//! SKIPPED loudly and returns `None`, and the test returns early. It never passes silently.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long [`Browser::wait_for`] and friends wait before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// At most this many Chromium instances at once across the test binary (the machine has 2 cores).
fn browsers() -> &'static tokio::sync::Semaphore {
    static S: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    S.get_or_init(|| tokio::sync::Semaphore::new(2))
}

/// `name` on the `PATH`, if there.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The Chromium binary and its chromedriver, or why they cannot be used.
/// Chromium and chromedriver, or None after a loud SKIPPED when they are missing and
/// `CHANGEGATE_SKIP_BROWSER_TESTS=1` (otherwise the test fails saying how to install them).
fn found(test: &str) -> Option<(PathBuf, PathBuf)> {
    match find_browser() {
        Ok(found) => Some(found),
        Err(why) => {
            if std::env::var("CHANGEGATE_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
                // Straight to the process's stderr: the test harness captures `eprintln!`
                // of passing tests, and this must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n********************************************************************\n\
                         SKIPPED browser test {test}: Chromium or chromedriver {why} \
                         (CHANGEGATE_SKIP_BROWSER_TESTS=1).\n\
                         This test did NOT run. Run scripts/test, or apt-get install chromium \
                         chromium-driver.\n\
                         ********************************************************************"
                );
                return None;
            }
            panic!(
                "\n\nBROWSER TEST {test} CANNOT RUN: Chromium or chromedriver {why}.\n\
                     Run the tests with scripts/test (it installs them), or install Debian's \
                     packages yourself:\n    sudo apt-get install -y chromium chromium-driver\n\
                     To skip the browser tests knowingly, set CHANGEGATE_SKIP_BROWSER_TESTS=1.\n"
            );
        }
    }
}

fn find_browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|n| which(n));
    let driver = which("chromedriver").or_else(|| {
        let p = Path::new("/usr/lib/chromium/chromedriver");
        p.is_file().then(|| p.to_path_buf())
    });
    match (chromium, driver) {
        (Some(c), Some(d)) => Ok((c, d)),
        (c, d) => Err(format!(
            "not found on the PATH:{}{}",
            if c.is_none() { " chromium" } else { "" },
            if d.is_none() { " chromedriver" } else { "" }
        )),
    }
}

/// A headless Chromium driven through chromedriver, pointed at one server.
pub struct Browser {
    /// The server's base URL (`http://127.0.0.1:PORT`); [`Browser::goto`] takes paths under it.
    pub base: String,
    driver: Child,
    driver_addr: String,
    session: String,
    http: reqwest::Client,
    _profile: TempDir,
    /// This browser's share of the bound on browsers at once (the first of a pair holds both).
    _permit: Option<tokio::sync::SemaphorePermit<'static>>,
}

/// An element found on the current page.
#[derive(Debug, Clone)]
pub struct Element {
    id: String,
    /// The selector it was found with, for messages.
    pub selector: String,
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone)]
pub struct Cookie {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// `Path`.
    pub path: String,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `Secure`.
    pub secure: bool,
    /// `SameSite` (`Strict`, `Lax`, `None`), when the browser reports it.
    pub same_site: Option<String>,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session for the server at `base`. Fails the
    /// test loudly when Chromium or chromedriver is missing, unless
    /// `CHANGEGATE_SKIP_BROWSER_TESTS=1`, in which case it prints SKIPPED and returns `None`.
    pub async fn start(base: &str, test: &str) -> Option<Browser> {
        let (chromium, chromedriver) = found(test)?;
        let permit = browsers()
            .acquire()
            .await
            .unwrap_or_else(|e| panic!("browser semaphore: {e}"));
        Some(Self::launch(base, &chromium, &chromedriver, Some(permit)).await)
    }

    /// Two browsers for one test (two people side by side), taken from the bound on browsers
    /// at once together: two tests that each took one and waited for a second would wait for
    /// each other for ever.
    pub async fn start_pair(base: &str, test: &str) -> Option<(Browser, Browser)> {
        let (chromium, chromedriver) = found(test)?;
        let permit = browsers()
            .acquire_many(2)
            .await
            .unwrap_or_else(|e| panic!("browser semaphore: {e}"));
        let first = Self::launch(base, &chromium, &chromedriver, Some(permit)).await;
        let second = Self::launch(base, &chromium, &chromedriver, None).await;
        Some((first, second))
    }

    async fn launch(
        base: &str,
        chromium: &Path,
        chromedriver: &Path,
        permit: Option<tokio::sync::SemaphorePermit<'static>>,
    ) -> Browser {
        let (driver, port) = spawn_driver(chromedriver);
        let driver_addr = format!("127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,1000",
                        "--no-first-run", "--no-default-browser-check",
                        "--disable-extensions", "--disable-background-networking",
                        "--disable-sync", "--password-store=basic",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                    // Chromium's password manager and its "change your password" bubble stay out.
                    "prefs": {
                        "credentials_enable_service": false,
                        "profile.password_manager_enabled": false,
                        "profile.password_manager_leak_detection": false,
                    },
                },
            }}
        });
        let mut b = Browser {
            base: base.trim_end_matches('/').to_owned(),
            driver,
            driver_addr,
            session: String::new(),
            http,
            _profile: profile,
            _permit: permit,
        };
        let v = b.call(reqwest::Method::POST, "/session", Some(caps)).await;
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver gave no session id: {v}"))
            .to_owned();
        b
    }

    /// One WebDriver command; answers its `value`, or fails the test with WebDriver's error.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://{}{path}", self.driver_addr);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: bad answer: {e}"));
        if !status.is_success() {
            panic!("WebDriver {method} {path}: {status}: {}", v["value"]);
        }
        v["value"].clone()
    }

    /// A WebDriver command that may fail with a WebDriver error (answered as `Err(error code)`).
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("http://{}{path}", self.driver_addr);
        let resp = self
            .http
            .request(method.clone(), &url)
            .json(&body.unwrap_or_else(|| json!({})))
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: bad answer: {e}"));
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(v["value"]["error"].as_str().unwrap_or("unknown").to_owned())
        }
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `path` (under the server's base URL, e.g. `/login`) or an absolute URL.
    pub async fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.call(
            reqwest::Method::POST,
            &self.s("/url"),
            Some(json!({ "url": url })),
        )
        .await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, &self.s("/url"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The path (and query) of the current URL, without the server's base.
    pub async fn path(&self) -> String {
        let url = self.url().await;
        url.strip_prefix(&self.base).unwrap_or(&url).to_owned()
    }

    /// The page's HTML as the browser now holds it.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, &self.s("/source"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The text of the whole page as a person sees it (`document.body.innerText`).
    pub async fn page_text(&self) -> String {
        self.execute(
            "return document.body ? document.body.innerText : '';",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The document's title.
    pub async fn title(&self) -> String {
        self.call(reqwest::Method::GET, &self.s("/title"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` in the page (the tests use it only to tamper with a form, as an attacker
    /// would; the pages themselves need no JavaScript).
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.s("/execute/sync"),
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The first element matching `css`, if any, now.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.try_locate("css selector", css).await
    }

    /// The first element matching the XPath expression `xpath`, if any, now.
    pub async fn try_find_xpath(&self, xpath: &str) -> Option<Element> {
        self.try_locate("xpath", xpath).await
    }

    async fn try_locate(&self, using: &str, css: &str) -> Option<Element> {
        match self
            .try_call(
                reqwest::Method::POST,
                &self.s("/element"),
                Some(json!({ "using": using, "value": css })),
            )
            .await
        {
            Ok(v) => Some(Element {
                id: v[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("no element reference in {v}"))
                    .to_owned(),
                selector: css.to_owned(),
            }),
            Err(e) if e == "no such element" => None,
            Err(e) => panic!("finding {css:?}: {e}"),
        }
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .call(
                reqwest::Method::POST,
                &self.s("/elements"),
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str())
                    .map(|id| Element {
                        id: id.to_owned(),
                        selector: css.to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to [`WAIT`] for it; fails the test with the
    /// page's URL and text when it never appears.
    pub async fn find(&self, css: &str) -> Element {
        let start = Instant::now();
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if start.elapsed() > WAIT {
                let text = self.page_text().await;
                panic!(
                    "no element {css:?} on {} after {WAIT:?}; the page says:\n{}",
                    self.url().await,
                    text.chars().take(3000).collect::<String>()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the current path starts with `prefix`; answers the path.
    pub async fn wait_for_path(&self, prefix: &str) -> String {
        let start = Instant::now();
        loop {
            let p = self.path().await;
            if p.starts_with(prefix) {
                return p;
            }
            if start.elapsed() > WAIT {
                let text = self.page_text().await;
                panic!(
                    "expected to be on {prefix}, still on {p} after {WAIT:?}; the page says:\n{}",
                    text.chars().take(3000).collect::<String>()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clears the field `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &self.s(&format!("/element/{}/clear", e.id)),
            None,
        )
        .await;
        self.type_into(&e, text).await;
    }

    /// Types `text` into `e` (keystrokes, as a person would).
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &self.s(&format!("/element/{}/value", e.id)),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.click_element(&e).await;
    }

    /// Clicks `e`.
    pub async fn click_element(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &self.s(&format!("/element/{}/click", e.id)),
            None,
        )
        .await;
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.element_text(&e).await
    }

    /// The visible text of `e`.
    pub async fn element_text(&self, e: &Element) -> String {
        self.call(
            reqwest::Method::GET,
            &self.s(&format!("/element/{}/text", e.id)),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The attribute `name` of the first element matching `css` (`None` when absent).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        self.element_attr(&e, name).await
    }

    /// The attribute `name` of `e` (`None` when absent).
    pub async fn element_attr(&self, e: &Element, name: &str) -> Option<String> {
        self.call(
            reqwest::Method::GET,
            &self.s(&format!("/element/{}/attribute/{name}", e.id)),
            None,
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// The current value of the form field matching `css` (its `value` property).
    pub async fn value(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::GET,
            &self.s(&format!("/element/{}/property/value", e.id)),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The cookie `name` for the current page, if the browser holds one.
    pub async fn cookie(&self, name: &str) -> Option<Cookie> {
        let v = self
            .try_call(
                reqwest::Method::GET,
                &self.s(&format!("/cookie/{name}")),
                None,
            )
            .await
            .ok()?;
        Some(Cookie {
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            value: v["value"].as_str().unwrap_or_default().to_owned(),
            path: v["path"].as_str().unwrap_or_default().to_owned(),
            http_only: v["httpOnly"].as_bool().unwrap_or(false),
            secure: v["secure"].as_bool().unwrap_or(false),
            same_site: v["sameSite"].as_str().map(str::to_owned),
        })
    }

    /// Marks the current document, so that [`Browser::wait_new_page`] can tell when another
    /// one has replaced it.
    pub async fn mark_page(&self) {
        self.execute("window.__cgOld = true; return true;", json!([]))
            .await;
    }

    /// Waits until the document marked by [`Browser::mark_page`] has been replaced by another
    /// one that has finished loading.
    pub async fn wait_new_page(&self) {
        let start = Instant::now();
        loop {
            let done = self
                .try_call(
                    reqwest::Method::POST,
                    &self.s("/execute/sync"),
                    Some(json!({
                        "script": "return window.__cgOld === undefined && document.readyState === 'complete';",
                        "args": [],
                    })),
                )
                .await;
            if done == Ok(Value::Bool(true)) {
                return;
            }
            if start.elapsed() > WAIT {
                panic!(
                    "no new page after {WAIT:?}; still on {}: {}",
                    self.url().await,
                    self.page_text()
                        .await
                        .chars()
                        .take(2000)
                        .collect::<String>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the first element matching `css` and waits for the page it leads to.
    pub async fn click_to_page(&self, css: &str) {
        let e = self.find(css).await;
        self.mark_page().await;
        self.click_element(&e).await;
        self.wait_new_page().await;
    }

    /// Submits the form that holds the field named `field`, clicking its (first) submit button
    /// as a person would, and waits for the page that answers.
    pub async fn submit_form_of(&self, field: &str) {
        self.mark_page().await;
        self.submit_form_of_no_wait(field).await;
        self.wait_new_page().await;
    }

    /// [`Browser::submit_form_of`] without waiting for an answer (for a form the browser itself
    /// may refuse to send).
    pub async fn submit_form_of_no_wait(&self, field: &str) {
        let xpath = format!(
            "//*[@name='{field}']/ancestor::form[1]//*[(self::button and (not(@type) or \
             @type='submit')) or (self::input and @type='submit')]"
        );
        let Some(button) = self.try_find_xpath(&xpath).await else {
            panic!(
                "no submit button in the form of field {field:?} on {}",
                self.url().await
            )
        };
        self.click_element(&button).await;
    }

    /// Picks `value` for the field `name`: the radio button or checkbox with that value, or the
    /// option of a `<select>`.
    pub async fn choose(&self, name: &str, value: &str) {
        let radio = format!("input[name=\"{name}\"][value=\"{value}\"]");
        if let Some(e) = self.try_find(&radio).await {
            let on = self
                .call(
                    reqwest::Method::GET,
                    &self.s(&format!("/element/{}/selected", e.id)),
                    None,
                )
                .await;
            if on != Value::Bool(true) {
                self.click_element(&e).await;
            }
            return;
        }
        let option = format!("select[name=\"{name}\"] option[value=\"{value}\"]");
        match self.try_find(&option).await {
            Some(e) => self.click_element(&e).await,
            None => panic!(
                "no choice {value:?} for field {name:?} on {}",
                self.url().await
            ),
        }
    }

    /// The browser's back button; waits for the page it goes back to.
    pub async fn back(&self) {
        self.mark_page().await;
        self.call(reqwest::Method::POST, &self.s("/back"), Some(json!({})))
            .await;
        self.wait_new_page().await;
    }

    /// The `lang` attribute of the page's `<html>`.
    pub async fn lang(&self) -> String {
        self.attr("html", "lang").await.unwrap_or_default()
    }

    /// Sets the window's size (as a desktop at 1366 or a phone at 390 pixels wide).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            &self.s("/window/rect"),
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// How far the page is wider than the window (0: no sideways scrolling).
    pub async fn overflow_x(&self) -> i64 {
        self.execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            json!([]),
        )
        .await
        .as_i64()
        .unwrap_or(i64::MAX)
    }

    /// Prints the page to a PDF at `path` (A4), as the browser's print would.
    pub async fn print_pdf(&self, path: &Path) {
        use base64::Engine;
        let v = self
            .call(
                reqwest::Method::POST,
                &self.s("/print"),
                Some(json!({ "page": { "width": 21.0, "height": 29.7 }, "background": true })),
            )
            .await;
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("print: {e}"));
        std::fs::write(path, pdf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Saves a PNG screenshot of the page to `path` (for looking at a failing page).
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self
            .call(reqwest::Method::GET, &self.s("/screenshot"), None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// Starts chromedriver on a port of its choosing (`--port=0`) and reads the port from its first
/// lines of output. A chromedriver that exits before saying so (seen when the machine is
/// starved) is started again, up to three times.
fn spawn_driver(chromedriver: &Path) -> (Child, u16) {
    let mut last = String::new();
    for attempt in 1..=3 {
        match try_spawn_driver(chromedriver) {
            Ok(started) => return started,
            Err(e) => {
                eprintln!("chromedriver start {attempt} of 3 failed: {e}");
                last = e;
            }
        }
    }
    panic!("chromedriver did not say which port it listens on: {last}")
}

fn try_spawn_driver(chromedriver: &Path) -> Result<(Child, u16), String> {
    let mut child = Command::new(chromedriver)
        .args(["--port=0", "--log-level=SEVERE"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("chromedriver has no stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut sent = false;
        for line in lines.by_ref().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("started successfully on port ").nth(1) {
                let port = rest.trim_end_matches('.').trim().parse::<u16>().ok();
                let _ = tx.send(port);
                sent = true;
            }
        }
        // Keep draining so chromedriver never blocks on a full pipe.
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(port)) => Ok((child, port)),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("{other:?}"))
        }
    }
}

/// Whether `buf` holds a whole HTTP answer (headers and a `Content-Length` body).
fn answer_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= end + 4 + len
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (chromedriver closes Chromium), then stops chromedriver. Plain
        // blocking HTTP: drop cannot await, and chromedriver is another process.
        if !self.session.is_empty()
            && let Ok(addr) = self.driver_addr.parse()
            && let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.driver_addr
            );
            // Wait for the whole answer (chromedriver answers once Chromium has quit), but not
            // for the connection to close: chromedriver may keep it open.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if answer_complete(&buf) {
                    break;
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Support shared by the browser tests and the HTTP-level web security tests.

impl crate::TestApp {
    /// Creates a person as an admin would (`admin create-user`): answers their one-time
    /// password, which they must replace at their first sign-in.
    pub async fn person(
        &self,
        username: &str,
        display_name: &str,
        org: &str,
        role: &str,
    ) -> String {
        self.app
            .create_user(
                &changegate_app::Principal::operator(),
                changegate_api::NewUser {
                    username: username.into(),
                    display_name: display_name.into(),
                    org: org.into(),
                    role: role.into(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("create user {username}: {e}"))
            .one_time_password
    }

    /// The audit events with `action`, oldest first.
    pub async fn audit_actions(&self, action: &str) -> Vec<changegate_api::AuditEvent> {
        let mut out = vec![];
        let mut after = 0;
        loop {
            let page = self
                .app
                .audit_page(&changegate_app::Principal::operator(), after, 1000)
                .await
                .unwrap_or_else(|e| panic!("audit: {e}"));
            let Some(last) = page.events.last() else {
                return out;
            };
            after = last.seq;
            out.extend(page.events.into_iter().filter(|e| e.action == action));
        }
    }
}

/// The RFC 6238 TOTP code (SHA-1, 30-second steps, 6 digits) of `secret_base32` for time step
/// `step` (Unix time / 30). Written here independently of the server's implementation.
pub fn totp(secret_base32: &str, step: u64) -> String {
    let key = base32_decode(secret_base32)
        .unwrap_or_else(|| panic!("the page's TOTP secret {secret_base32:?} is not base32"));
    hotp(&key, step, 6)
}

/// The current TOTP time step.
pub fn totp_step_now() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("{e}"));
    now.as_secs() / 30
}

/// RFC 4226 HOTP with `digits` digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mac = hmac_sha1(key, &counter.to_be_bytes());
    let off = (mac[19] & 0x0f) as usize;
    let bin = (u32::from(mac[off] & 0x7f) << 24)
        | (u32::from(mac[off + 1]) << 16)
        | (u32::from(mac[off + 2]) << 8)
        | u32::from(mac[off + 3]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// RFC 4648 base32 (upper or lower case, `=` padding and spaces ignored, bits left over after
/// the last whole byte dropped), read with `data-encoding`, not with the server's code.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut spec = data_encoding::BASE32_NOPAD_NOCASE.specification();
    spec.check_trailing_bits = false;
    let b32 = spec.encoding().ok()?;
    let mut symbols = s
        .chars()
        .filter(|c| *c != '=' && !c.is_whitespace())
        .collect::<String>()
        .into_bytes();
    // A last symbol holding only leftover bits: dropped, but it must be a symbol.
    if matches!(symbols.len() % 8, 1 | 3 | 6) {
        let last = symbols.pop()?;
        b32.decode(&[last, b'A']).ok()?;
    }
    b32.decode(&symbols).ok()
}

/// HMAC-SHA-1 (RFC 2104).
fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&sha1(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(msg.iter().copied())
        .collect();
    let inner = sha1(&inner);
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner).collect();
    sha1(&outer)
}

/// SHA-1 (FIPS 180-4), for HMAC-SHA-1 only.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut m = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    m.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in m.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_the_fips_examples() {
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }

    #[test]
    fn hotp_matches_rfc_4226_appendix_d() {
        let key = b"12345678901234567890";
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(hotp(key, i as u64, 6), *w, "counter {i}");
        }
    }

    #[test]
    fn totp_matches_rfc_6238_appendix_b_sha1() {
        // Secret "12345678901234567890" in base32.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        for (t, want) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            let key = base32_decode(secret).unwrap();
            assert_eq!(hotp(&key, t / 30, 8), want, "T = {t}");
            assert_eq!(totp(secret, t / 30), want[2..], "T = {t}");
        }
    }
}
