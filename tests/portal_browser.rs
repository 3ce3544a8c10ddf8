//! End to end in headless Chromium: the customer's steps 1-9 in the reference portal
//! (`examples/portal/`), by clicking, then removing the partner of record.
//!
//! Drives Debian's `chromium` through `chromedriver`'s W3C WebDriver HTTP API with a
//! minimal blocking client written here (std TCP + serde_json), so the test adds no
//! dependency. Saves `docs/check-id.png` (the Check ID pane, used by the README) and
//! `target/portal-e2e.png` (the last page).
//!
//! Without `/usr/bin/chromium` or `/usr/bin/chromedriver` it prints
//! "skipped: chromium/chromedriver not installed" and passes, unless `CI` is set, where
//! it fails (`.ci/chromium.sh` installs both).

#[allow(dead_code)]
#[path = "../examples/portal/api.rs"]
mod api;
#[allow(dead_code)]
#[path = "../examples/portal/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../examples/portal/html.rs"]
mod html;
#[allow(dead_code)]
#[path = "../examples/portal/pages.rs"]
mod pages;
#[allow(dead_code)]
#[path = "../examples/portal/seed.rs"]
mod seed;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

#[test]
fn customer_steps_1_to_9_then_remove_in_chromium() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
        if ci {
            panic!(
                "CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing: run .ci/chromium.sh first"
            );
        }
        println!("skipped: chromium/chromedriver not installed");
        return;
    }

    let portal = start_portal();
    let driver = Chromedriver::start();
    let browser = Browser::open(driver.addr);
    let base = format!("http://{}", portal.addr);

    // Steps 1-3: sign in as the global administrator, Billing > Subscriptions.
    browser.goto(&format!("{base}/"));
    browser.click(&browser.find("#customer option[value='contoso']"));
    browser.click(&browser.find("#role option[value='global_administrator']"));
    browser.click(&browser.find("#sign-in"));
    let who = browser.text(&browser.find("#signed-in"));
    assert!(who.contains("contoso — global administrator"), "{who}");
    browser.click(&browser.find("#nav-subscriptions"));
    let list = browser.text(&browser.find("#subscriptions"));
    assert!(
        list.contains("Office 365 E3") && list.contains("Northwind Traders"),
        "{list}"
    );

    // Step 4: open the subscription, More actions > Add partner of record.
    browser.click(&browser.find("a[data-subscription='sub-001']"));
    assert_eq!(browser.text(&browser.find("#subscription-id")), "sub-001");
    browser.click(&browser.find("#more-actions-toggle"));
    assert!(browser.find_all("#action-edit").is_empty());
    browser.click(&browser.find("#action-add"));

    // Step 5: a typo first, shown next to the field.
    let field = browser.find("#mpn-id");
    browser.clear(&field);
    browser.send_keys(&field, "56538");
    browser.click(&browser.find("#check-id"));
    let error = browser.text(&browser.find("#mpn-id-error"));
    assert!(
        error.contains("no partner with Partner ID (MPN ID) 56538"),
        "{error}"
    );

    // Steps 5-6: the right MPN ID, Check ID: the partner's name and location.
    let field = browser.find("#mpn-id");
    browser.clear(&field);
    browser.send_keys(&field, "565380");
    browser.click(&browser.find("#check-id"));
    assert_eq!(
        browser.text(&browser.find("#partner-name")),
        "Fabrikam Consulting"
    );
    assert_eq!(
        browser.text(&browser.find("#partner-location")),
        "Seattle, WA, United States"
    );
    let pane = browser.find("#partner-pane");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("check-id.png"), browser.element_screenshot(&pane)).unwrap();

    // Step 7: Submit, the confirmation.
    browser.click(&browser.find("#submit"));
    let confirmation = browser.text(&browser.find("#confirmation"));
    assert!(
        confirmation.contains("Your partner of record has been updated")
            && confirmation.contains("Fabrikam Consulting (565380)"),
        "{confirmation}"
    );

    // Step 8: verify through More actions > Edit partner of record.
    browser.click(&browser.find("#back-to-subscription"));
    assert!(
        browser
            .text(&browser.find("#partner-of-record"))
            .contains("565380")
    );
    browser.click(&browser.find("#more-actions-toggle"));
    browser.click(&browser.find("#action-edit"));
    assert_eq!(browser.text(&browser.find("#current-mpn-id")), "565380");
    assert_eq!(
        browser.property(&browser.find("#mpn-id"), "value"),
        "565380"
    );

    // Step 9: the partner's email is in the outbox.
    browser.click(&browser.find("#nav-outbox"));
    let sent = browser.text(&browser.find("#sent"));
    assert!(
        sent.contains("por@fabrikam.example")
            && sent.contains(
                "You are now the partner of record for contoso's Office 365 subscription sub-001"
            ),
        "{sent}"
    );

    // The history, then remove the partner of record.
    browser.click(&browser.find("#nav-subscriptions"));
    browser.click(&browser.find("a[data-subscription='sub-001']"));
    browser.click(&browser.find("#history"));
    let history = browser.text(&browser.find("table#history"));
    assert!(
        history.contains("Fabrikam Consulting (565380) became partner of record"),
        "{history}"
    );
    browser.click(&browser.find("nav.crumbs a[href='/subscriptions/sub-001']"));
    browser.click(&browser.find("#more-actions-toggle"));
    browser.click(&browser.find("#action-remove"));
    browser.click(&browser.find("#confirm-remove"));
    let confirmation = browser.text(&browser.find("#confirmation"));
    assert!(
        confirmation.contains("The partner of record was removed"),
        "{confirmation}"
    );
    browser.click(&browser.find("#back-to-subscription"));
    assert!(
        browser
            .text(&browser.find("#partner-of-record"))
            .contains("none")
    );
    browser.click(&browser.find("#more-actions-toggle"));
    assert!(browser.find_all("#action-remove").is_empty());
    assert_eq!(browser.find_all("#action-add").len(), 1);
    browser.click(&browser.find("#nav-outbox"));
    let sent = browser.text(&browser.find("#sent"));
    assert!(
        sent.contains(
            "You are no longer the partner of record for contoso's Office 365 subscription sub-001"
        ),
        "{sent}"
    );

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("portal-e2e.png"), browser.screenshot()).unwrap();
}

// ---- the portal, in process, on a free port ----

struct Portal {
    addr: SocketAddr,
    // Dropping the runtime stops the server.
    _runtime: tokio::runtime::Runtime,
}

fn start_portal() -> Portal {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let router = runtime.block_on(async {
        let (service, outbox) = seed::demo_service().await.unwrap();
        app::build_app(service, outbox, seed::customers().unwrap())
    });
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, router).await.unwrap();
    });
    // The socket listens already; wait until the server answers.
    wait_until("the portal", || http(addr, "GET", "/outbox", None).is_ok());
    Portal {
        addr,
        _runtime: runtime,
    }
}

/// Polls `ready` every 50 ms, for at most 10 s.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- chromedriver ----

struct Chromedriver {
    child: Child,
    addr: SocketAddr,
}

impl Chromedriver {
    /// Starts chromedriver on a port it picks (`--port=0`), read from its first lines.
    fn start() -> Chromedriver {
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port.parse::<u16>().ok());
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(port)) => port,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver did not say its port within 10 s: {other:?}");
            }
        };
        let driver = Chromedriver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        wait_until("chromedriver", || {
            http(driver.addr, "GET", "/status", None)
                .is_ok_and(|(_, v)| v["value"]["ready"] == json!(true))
        });
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- a minimal W3C WebDriver client ----

struct Browser {
    driver: SocketAddr,
    session: String,
    profile: PathBuf,
}

impl Browser {
    fn open(driver: SocketAddr) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "dpor-portal-e2e-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--hide-scrollbars",
                        "--force-device-scale-factor=1", "--window-size=1100,800",
                        format!("--user-data-dir={}", profile.display()),
                    ],
                },
            }},
        });
        let (status, value) = http(driver, "POST", "/session", Some(&capabilities))
            .unwrap_or_else(|e| panic!("POST /session: {e}"));
        assert_eq!(status, 200, "POST /session: {value}");
        let session = value["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id: {value}"))
            .to_owned();
        let browser = Browser {
            driver,
            session,
            profile,
        };
        // Finding an element waits up to 5 s for it (the page after a click loading).
        browser.command(
            "POST",
            "/timeouts",
            Some(json!({ "implicit": 5000, "pageLoad": 30000 })),
        );
        browser
    }

    /// One command in the session: its `value`, or a panic with WebDriver's error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (status, value) = http(self.driver, method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        // `find_all` is used to assert absence: no implicit wait for it.
        self.command("POST", "/timeouts", Some(json!({ "implicit": 0 })));
        let found = self.command(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        self.command("POST", "/timeouts", Some(json!({ "implicit": 5000 })));
        found
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn find(&self, css: &str) -> String {
        let path = format!("/session/{}/element", self.session);
        let body = json!({ "using": "css selector", "value": css });
        let (status, value) = http(self.driver, "POST", &path, Some(&body))
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        assert_eq!(
            status,
            200,
            "no element {css}: {value}\npage: {}",
            self.source()
        );
        value["value"][ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("find {css}: {value}"))
            .to_owned()
    }

    fn click(&self, element: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn clear(&self, element: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
    }

    fn send_keys(&self, element: &str, text: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn text(&self, element: &str) -> String {
        let value = self.command("GET", &format!("/element/{element}/text"), None);
        value.as_str().unwrap_or_default().to_owned()
    }

    fn property(&self, element: &str, name: &str) -> String {
        let value = self.command("GET", &format!("/element/{element}/property/{name}"), None);
        value.as_str().unwrap_or_default().to_owned()
    }

    fn source(&self) -> String {
        let path = format!("/session/{}/source", self.session);
        http(self.driver, "GET", &path, None)
            .map(|(_, v)| v["value"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    fn screenshot(&self) -> Vec<u8> {
        let value = self.command("GET", "/screenshot", None);
        base64_decode(value.as_str().expect("a base64 screenshot"))
    }

    fn element_screenshot(&self, element: &str) -> Vec<u8> {
        let value = self.command("GET", &format!("/element/{element}/screenshot"), None);
        base64_decode(value.as_str().expect("a base64 screenshot"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = http(self.driver, "DELETE", &path, None);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One HTTP/1.1 exchange (`Connection: close`): the status and the JSON body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let timeout = Some(Duration::from_secs(60));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(timeout)
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    // chromedriver answers `Connection: close` but keeps the socket open: read the
    // head, then exactly the body its headers announce.
    let mut response = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let split = loop {
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream
            .read(&mut buffer)
            .map_err(|e| format!("receive: {e}"))?;
        if n == 0 {
            return Err("connection closed before the end of the headers".into());
        }
        response.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut payload = response[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|e| format!("bad Content-Length: {e}"))?;
        while payload.len() < length {
            let n = stream
                .read(&mut buffer)
                .map_err(|e| format!("receive: {e}"))?;
            if n == 0 {
                return Err("connection closed before the end of the body".into());
            }
            payload.extend_from_slice(&buffer[..n]);
        }
        payload.truncate(length);
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while !payload.ends_with(b"0\r\n\r\n") {
            let n = stream
                .read(&mut buffer)
                .map_err(|e| format!("receive: {e}"))?;
            if n == 0 {
                break;
            }
            payload.extend_from_slice(&buffer[..n]);
        }
        payload = dechunk(&payload)?;
    } else {
        stream
            .read_to_end(&mut payload)
            .map_err(|e| format!("receive: {e}"))?;
    }
    if payload.is_empty() {
        return Ok((status, Value::Null));
    }
    let value = serde_json::from_slice(&payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&payload).into_owned()));
    Ok((status, value))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size = std::str::from_utf8(&data[..line_end]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size: {e}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("short chunk")?);
        data = data.get(size + 2..).ok_or("short chunk")?;
    }
}

/// Standard base64 (with padding, whitespace ignored), as WebDriver screenshots come.
fn base64_decode(text: &str) -> Vec<u8> {
    fn sextet(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", char::from(c)),
        }
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= sextet(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode(""), b"");
    assert_eq!(base64_decode("iVBORw0KGgo=")[..4], [0x89, b'P', b'N', b'G']);
}
