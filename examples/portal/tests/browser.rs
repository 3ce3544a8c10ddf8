//! KB3185444 in headless Chromium, by clicking: the customer's steps 1-9, then the
//! removal exactly as the KB says it ("Customer can remove the POR at any time by
//! deleting the MPN ID and clicking the check button").
//!
//! Drives Debian's `chromium` through `chromedriver` with `fantoccini`. It needs both,
//! so it is ignored by a plain `cargo test`; run it with
//! `cargo test -p dpor-portal --test browser -- --include-ignored` after
//! `.ci/chromium.sh` (CI does). Run without them, it fails and says what is missing.
//!
//! It saves the last page to Cargo's temporary directory for tests, and rewrites the
//! README's `docs/check-id.png` (the Check ID pane) only when `DPOR_UPDATE_SCREENSHOTS=1`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use dpor_portal::{Config, build_app, seed, session::Sessions};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver (.ci/chromium.sh installs them)"]
async fn the_customer_adds_checks_submits_then_removes_by_clearing_the_id() {
    for needed in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(needed).exists(),
            "{needed} is missing: run .ci/chromium.sh, then this test again"
        );
    }
    let base = start_portal().await;
    let (_driver, driver_url) = start_chromedriver().await;
    let profile = tempdir();
    let c = open_browser(&driver_url, &profile).await;
    // In a task of its own, so that a failed step (an `assert!`) still lets the browser
    // close and its profile go before the test fails.
    let walked = tokio::spawn({
        let (c, base) = (c.clone(), base.clone());
        async move { walk(&c, &base).await }
    })
    .await;
    let last_page = c.screenshot().await;
    c.close().await.expect("the browser closes");
    let _ = std::fs::remove_dir_all(&profile);
    if let Ok(png) = last_page {
        let _ = std::fs::write(
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-e2e.png"),
            png,
        );
    }
    match walked {
        Ok(result) => result.unwrap(),
        Err(failed) => std::panic::resume_unwind(failed.into_panic()),
    }
}

type Step = Result<(), fantoccini::error::CmdError>;

/// The KB's steps, as a customer clicks them.
async fn walk(c: &Client, base: &str) -> Step {
    // Steps 1-3: sign in as the global administrator, Billing > Subscriptions.
    c.goto(&format!("{base}/")).await?;
    let form = c.find(Locator::Id("customer-sign-in")).await?;
    form.find(Locator::Id("customer"))
        .await?
        .select_by_value("contoso")
        .await?;
    form.find(Locator::Id("role"))
        .await?
        .select_by_value("global_administrator")
        .await?;
    click(c, "#sign-in").await?;
    assert!(
        text(c, "#signed-in")
            .await?
            .contains("contoso — global administrator")
    );
    click(c, "#nav-subscriptions").await?;
    let list = text(c, "#subscriptions").await?;
    assert!(
        list.contains("Office 365 E3") && list.contains("Northwind Traders"),
        "{list}"
    );

    // Step 4: open the subscription, More actions > Add partner of record.
    click(c, "a[data-subscription='sub-001']").await?;
    assert_eq!(text(c, "#subscription-id").await?, "sub-001");
    click(c, "#more-actions-toggle").await?;
    assert!(c.find_all(Locator::Css("#action-edit")).await?.is_empty());
    click(c, "#action-add").await?;

    // Step 5: a typo first, shown next to the field.
    type_into(c, "#mpn-id", "56538").await?;
    click(c, "#check-id").await?;
    let error = text(c, "#mpn-id-error").await?;
    assert!(
        error.contains("no partner with Partner ID (MPN ID) 56538"),
        "{error}"
    );

    // Steps 5-6: the right MPN ID, Check ID: the partner's name and location.
    type_into(c, "#mpn-id", "565380").await?;
    click(c, "#check-id").await?;
    assert_eq!(text(c, "#partner-name").await?, "Fabrikam Consulting");
    assert_eq!(
        text(c, "#partner-location").await?,
        "Seattle, WA, United States"
    );
    if std::env::var("DPOR_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let pane = c
            .find(Locator::Id("partner-pane"))
            .await?
            .screenshot()
            .await?;
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::write(docs.join("check-id.png"), pane).expect("docs/check-id.png is written");
    }

    // Step 7: Submit, the confirmation.
    click(c, "#submit").await?;
    let confirmation = text(c, "#confirmation").await?;
    assert!(
        confirmation.contains("Your partner of record has been updated")
            && confirmation.contains("Fabrikam Consulting (565380)"),
        "{confirmation}"
    );

    // Step 8: verify through More actions > Edit partner of record.
    click(c, "#back-to-subscription").await?;
    assert!(text(c, "#partner-of-record").await?.contains("565380"));
    click(c, "#more-actions-toggle").await?;
    click(c, "#action-edit").await?;
    assert_eq!(text(c, "#current-mpn-id").await?, "565380");
    let field = c.find(Locator::Css("#mpn-id")).await?;
    assert_eq!(field.prop("value").await?.as_deref(), Some("565380"));

    // Step 9: the partner's email, in the customer's view of the outbox.
    click(c, "#nav-outbox").await?;
    let sent = text(c, "#sent").await?;
    assert!(
        sent.contains(
            "You are now the partner of record for contoso's Office 365 subscription sub-001"
        ),
        "{sent}"
    );

    // The removal, as the KB says it: Edit partner of record, delete the MPN ID,
    // Check ID; the current partner and "Remove"; confirm.
    click(c, "#nav-subscriptions").await?;
    click(c, "a[data-subscription='sub-001']").await?;
    click(c, "#more-actions-toggle").await?;
    click(c, "#action-edit").await?;
    type_into(c, "#mpn-id", "").await?;
    click(c, "#check-id").await?;
    let question = text(c, "#remove-question").await?;
    assert!(
        question.contains("Remove Fabrikam Consulting (565380) as the partner of record"),
        "{question}"
    );
    click(c, "#confirm-remove").await?;
    let confirmation = text(c, "#confirmation").await?;
    assert!(
        confirmation.contains("The partner of record was removed"),
        "{confirmation}"
    );
    click(c, "#back-to-subscription").await?;
    assert!(text(c, "#partner-of-record").await?.contains("none"));
    click(c, "#more-actions-toggle").await?;
    assert!(c.find_all(Locator::Css("#action-remove")).await?.is_empty());
    click(c, "#nav-outbox").await?;
    let sent = text(c, "#sent").await?;
    assert!(
        sent.contains(
            "You are no longer the partner of record for contoso's Office 365 subscription sub-001"
        ),
        "{sent}"
    );

    // The history has both.
    click(c, "#nav-subscriptions").await?;
    click(c, "a[data-subscription='sub-001']").await?;
    click(c, "#history").await?;
    let history = text(c, "table#history").await?;
    assert!(
        history.contains("Fabrikam Consulting (565380) became partner of record")
            && history.contains("565380 was removed as partner of record by the customer"),
        "{history}"
    );
    Ok(())
}

/// Clicks the element `css` names, once it is there.
async fn click(c: &Client, css: &str) -> Step {
    c.wait().for_element(Locator::Css(css)).await?.click().await
}

/// The text of the element `css` names, once it is there.
async fn text(c: &Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    c.wait().for_element(Locator::Css(css)).await?.text().await
}

/// Clears the field `css` names and types `keys` into it.
async fn type_into(c: &Client, css: &str, keys: &str) -> Step {
    let field = c.wait().for_element(Locator::Css(css)).await?;
    field.clear().await?;
    if !keys.is_empty() {
        field.send_keys(keys).await?;
    }
    Ok(())
}

/// The demo portal, served in this process on a free port; its base URL.
async fn start_portal() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (service, outbox) = seed::demo_service().await.unwrap();
    let config = Config {
        sessions: Sessions::generated(false),
        origin: None,
        operator_token: "unused".to_owned(),
        customers: seed::customers().unwrap(),
    };
    let app = build_app(service, outbox, config);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// chromedriver on the port it picks, and its URL. Killed when the `Child` drops.
async fn start_chromedriver() -> (Child, String) {
    let mut child = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    let port = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return port.parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("chromedriver says its port within 20 s");
    // Keep reading its stdout, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://127.0.0.1:{port}"))
}

/// Headless Chromium with a profile of its own and no background traffic.
async fn open_browser(driver: &str, profile: &Path) -> Client {
    let capabilities = json!({
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
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver)
        .await
        .expect("chromedriver opens a Chromium session")
}

/// A new, empty directory for the browser's profile.
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dpor-portal-e2e-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
