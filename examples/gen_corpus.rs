//! Generates reproducible Redshift audit log files for the demo and the benchmark.
//!
//!     cargo run --release --example gen_corpus -- day   OUT_DIR [--gzip]
//!     cargo run --release --example gen_corpus -- bench OUT_DIR MB_PER_TYPE
//!     cargo run --release --example gen_corpus -- big   OUT_FILE MB   (plain user activity log)
//!     cargo run --release --example gen_corpus -- short OUT_DIR MB_PER_TYPE
//!
//! `day` writes one small day (2024-03-01, 24 hourly files of each log type) under the real key
//! layout `AWSLogs/<account>/redshift/<region>/YYYY/MM/DD/`; `bench` writes one plain and one
//! gzip file of each log type of at least MB_PER_TYPE megabytes of text. The mix is realistic:
//! multi-line queries, long application names, IPv6-mapped hosts, IAM users, a little UTF-8.
//! `short` writes the same files as `bench` with the statement mix of a busy cluster serving BI
//! tools and dashboards: many `SELECT 1` and session settings, most statements dashboard queries
//! of 100 to 300 bytes on one line, a few multi-line ETL statements.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use redshift_audit_forwarder::time::date_of_day;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const CLUSTER: &str = "analytics-prod";

/// xorshift64*: small, seedable, the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A time in milliseconds since the epoch, in the connection/user log spelling.
fn log_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = date_of_day(days).unwrap();
    let wd = WEEKDAYS[days.rem_euclid(7) as usize];
    format!(
        "{wd}, {d} {} {y} {:02}:{:02}:{:02}:{:03}",
        MONTHS[(m - 1) as usize],
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

fn iso_seconds(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = date_of_day(days).unwrap();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60
    )
}

fn host(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "[local] ".to_string(),
        1..=6 => format!(
            "::ffff:{}.{}.{}.{} ",
            10 + rng.below(200),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        7 => format!("2001:db8:{:x}::{:x} ", rng.below(65536), rng.below(65536)),
        _ => format!(
            "{}.{}.{}.{} ",
            172,
            16 + rng.below(16),
            rng.below(256),
            rng.below(256)
        ),
    }
}

fn user(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => "rdsdb".to_string(),
        1 => format!("IAM:user{}", rng.below(50)),
        _ => rng
            .pick(&[
                "alice",
                "bob",
                "etl_loader",
                "looker",
                "dbt_prod",
                "tableau_svc",
            ])
            .to_string(),
    }
}

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next();
    let b = rng.next();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn app_name(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => String::new(),
        1 => {
            // Some JDBC drivers put a stack trace in the application name.
            let mut s = String::from("java.lang.Thread.getStackTrace");
            for i in 0..(5 + rng.below(40)) {
                s.push_str(&format!(
                    " at com.example.etl.Stage{i}.run(Stage{i}.java:{})",
                    rng.below(900)
                ));
            }
            s
        }
        _ => rng
            .pick(&[
                "psql",
                "dbt",
                "Looker",
                "Tableau 2023.3",
                "RedshiftJDBC",
                "airflow-worker-7",
            ])
            .to_string(),
    }
}

fn connection_line(rng: &mut Rng, ms: i64) -> String {
    let event = rng.pick(&[
        "authenticated",
        "initiating session",
        "disconnecting session",
        "authentication failure",
        "set application_name",
    ]);
    let host = host(rng);
    let local = host.starts_with('[');
    let port = if local {
        " ".to_string()
    } else {
        format!("{} ", 1024 + rng.below(60000))
    };
    let (method, user) = match rng.below(5) {
        0 => ("IAM AssumeUser", format!("IAM:user{}", rng.below(50))),
        1 => ("Ident", "rdsdb".to_string()),
        _ => ("password", user(rng)),
    };
    let duration = if event == "disconnecting session" {
        rng.below(10_000_000_000)
    } else {
        0
    };
    let (ssl, cipher) = if local {
        (" ", " ")
    } else {
        ("TLSv1.2 ", "ECDHE-RSA-AES256-GCM-SHA384 ")
    };
    format!(
        "{event} |{}|{host}|{port}|{}|{} |{user} |{method} |{duration}|{ssl}|{cipher}|0| | | |{} |{} |{} |{} |{}|{}",
        log_time(ms),
        rng.below(1 << 31),
        rng.pick(&["dev", "analytics", "prod_dw"]),
        app_name(rng),
        rng.pick(&["Linux 5.10.226-214.879.amzn2.x86_64 amd64", "Windows 10 10.0 amd64", "Mac OS X 14.4 aarch64"]),
        rng.pick(&["Amazon Redshift JDBC Driver 2.1.0.26", "libpq 15.4", "Redshift ODBC 2.0.1"]),
        rng.pick(&["none", "BrowserSAML", "JwtIamAuthPlugin"]),
        rng.below(3),
        uuid(rng)
    )
}

fn user_line(rng: &mut Rng, ms: i64) -> String {
    let action = rng.pick(&["create", "alter", "drop", "rename"]);
    let old = if action == "rename" {
        format!("{} ", user(rng))
    } else {
        " ".to_string()
    };
    let valuntil = match rng.below(4) {
        0 => "2026-06-30 00:00:00".to_string(),
        1 => "infinity".to_string(),
        _ => "9223372036854775807".to_string(),
    };
    format!(
        "{}|{} |{old}|{action} |{}|{}|{}|{valuntil}|{}|{}|{}",
        100 + rng.below(900),
        user(rng),
        rng.below(2),
        rng.below(2),
        rng.below(2),
        rng.below(1 << 30),
        rng.below(1 << 40),
        log_time(ms)
    )
}

fn query(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=2 => rng
            .pick(&[
                "SET statement_timeout TO 120000",
                "SELECT 1",
                "BEGIN;",
                "COMMIT;",
                "SET datestyle TO ISO;",
                "select current_user, version();",
            ])
            .to_string(),
        3..=6 => {
            let cols = 2 + rng.below(12);
            let mut q = String::from("SELECT ");
            for c in 0..cols {
                q.push_str(&format!("t{}.col_{} AS \"Col {c}\",\n       ", c % 3, rng.below(100)));
            }
            q.push_str(&format!(
                "now()\nFROM    sales.orders t0\nJOIN    sales.customers t1 ON t1.id = t0.customer_id\nWHERE   t0.region = 'Zürich' AND t0.amount > {}\nORDER BY 1;",
                rng.below(10_000)
            ));
            q
        }
        7 | 8 => format!(
            "INSERT INTO events (id, payload) VALUES ({}, '{{\"k\": \"v\\\\n\", \"tab\":\"\t\"}}');",
            rng.next()
        ),
        _ => {
            // A long generated statement (a BI tool's CASE ladder), a few KB to tens of KB.
            let n = 20 + rng.below(400);
            let mut q = String::from("SELECT CASE\n");
            for i in 0..n {
                q.push_str(&format!("    WHEN segment_id = {i} THEN 'segment {i} — long label {}'\n", rng.below(1_000_000)));
            }
            q.push_str("END AS segment_label\nFROM analytics.customer_segments;");
            q
        }
    }
}

fn activity_line(rng: &mut Rng, ms: i64) -> String {
    statement_line(rng, ms, query)
}

/// A user activity log record: the header, then a statement from `query`.
fn statement_line(rng: &mut Rng, ms: i64, query: fn(&mut Rng) -> String) -> String {
    format!(
        "'{} UTC [ db={} user={} pid={} userid={} xid={} ]' LOG: {}",
        iso_seconds(ms),
        rng.pick(&["dev", "analytics", "prod_dw"]),
        user(rng),
        rng.below(1 << 30),
        100 + rng.below(900),
        rng.below(1 << 40),
        query(rng)
    )
}

/// A busy cluster's statements: short ones mostly (issue 11's "short statements" corpus).
fn short_query(rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=39 => rng
            .pick(&[
                "SELECT 1",
                "select 1",
                "SET statement_timeout TO 300000",
                "SET datestyle TO ISO",
                "BEGIN",
                "COMMIT",
                "SHOW search_path",
                "select current_user",
                "SELECT pg_backend_pid()",
            ])
            .to_string(),
        40..=94 => {
            // A dashboard tile: one line, 100 to 300 bytes.
            let mut q = format!(
                "SELECT date_trunc('{}', o.created_at) AS period, count(*) AS orders, sum(o.amount) AS revenue FROM sales.orders o WHERE o.region = '{}'",
                rng.pick(&["day", "week", "month", "hour"]),
                rng.pick(&["emea", "amer", "apac", "Zürich"])
            );
            for _ in 0..rng.below(3) {
                q.push_str(&format!(" AND o.channel_id = {}", rng.below(1000)));
            }
            q.push_str(" GROUP BY 1 ORDER BY 1 DESC LIMIT 500");
            q
        }
        _ => {
            // An ETL step: several lines, up to a few KB.
            let mut q =
                String::from("INSERT INTO dw.fact_orders\nSELECT o.id,\n       o.customer_id,\n");
            for c in 0..(5 + rng.below(40)) {
                q.push_str(&format!("       coalesce(o.attr_{c}, '') AS attr_{c},\n"));
            }
            q.push_str("       getdate()\nFROM   staging.orders o\nLEFT JOIN dw.fact_orders f ON f.id = o.id\nWHERE  f.id IS NULL;");
            q
        }
    }
}

fn short_activity_line(rng: &mut Rng, ms: i64) -> String {
    statement_line(rng, ms, short_query)
}

type LineFn = fn(&mut Rng, i64) -> String;

const TYPES: [(&str, LineFn); 3] = [
    ("connectionlog", connection_line),
    ("userlog", user_line),
    ("useractivitylog", activity_line),
];

/// Writes lines until at least `bytes` of text, to `out`; returns the bytes written.
fn write_lines(
    out: &mut dyn Write,
    rng: &mut Rng,
    line: LineFn,
    start_ms: i64,
    bytes: u64,
) -> io::Result<u64> {
    let mut written = 0;
    let mut ms = start_ms;
    while written < bytes {
        ms += rng.below(2_000) as i64;
        let l = line(rng, ms);
        out.write_all(l.as_bytes())?;
        out.write_all(b"\n")?;
        written += l.len() as u64 + 1;
    }
    Ok(written)
}

fn gz_writer(path: &Path) -> io::Result<GzEncoder<BufWriter<File>>> {
    Ok(GzEncoder::new(
        BufWriter::new(File::create(path)?),
        flate2::Compression::default(),
    ))
}

const DAY_START_MS: i64 = 1_709_251_200_000; // 2024-03-01T00:00:00Z

fn day(out: &Path) -> io::Result<()> {
    let dir = out.join(format!("AWSLogs/{ACCOUNT}/redshift/{REGION}/2024/03/01"));
    fs::create_dir_all(&dir)?;
    let mut rng = Rng(0x5eed_0001);
    for hour in 0..24 {
        for (i, (name, line)) in TYPES.iter().enumerate() {
            let path = dir.join(format!(
                "{ACCOUNT}_redshift_{REGION}_{CLUSTER}_{name}_2024-03-01T{hour:02}:53.gz"
            ));
            let mut gz = gz_writer(&path)?;
            // Records in a file are older than its name's time.
            let start = DAY_START_MS + (hour as i64 - 1) * 3_600_000;
            let size = [6_000, 1_500, 40_000][i] + rng.below(2_000);
            write_lines(&mut gz, &mut rng, *line, start, size)?;
            gz.finish()?.flush()?;
        }
    }
    println!("{}", dir.display());
    Ok(())
}

/// The `short` corpus: `bench`'s connection and user logs, the short-statement activity log.
const SHORT_TYPES: [(&str, LineFn); 3] = [
    ("connectionlog", connection_line),
    ("userlog", user_line),
    ("useractivitylog", short_activity_line),
];

fn bench(out: &Path, mb: u64, types: &[(&str, LineFn); 3]) -> io::Result<()> {
    fs::create_dir_all(out)?;
    for (i, (name, line)) in types.iter().enumerate() {
        let base = format!("{ACCOUNT}_redshift_{REGION}_{CLUSTER}_{name}_2024-03-01T00:53");
        let plain: PathBuf = out.join(&base);
        let mut rng = Rng(0xbe4c_0000 + i as u64);
        let mut w = BufWriter::new(File::create(&plain)?);
        let n = write_lines(&mut w, &mut rng, *line, DAY_START_MS, mb * 1_000_000)?;
        w.flush()?;
        let mut gz = gz_writer(&out.join(format!("{base}.gz")))?;
        io::copy(&mut File::open(&plain)?, &mut gz)?;
        gz.finish()?.flush()?;
        println!("{name}: {n} bytes");
    }
    Ok(())
}

fn big(path: &Path, mb: u64) -> io::Result<()> {
    let mut rng = Rng(0xb16_f11e);
    let mut w = BufWriter::new(File::create(path)?);
    let n = write_lines(
        &mut w,
        &mut rng,
        activity_line,
        DAY_START_MS,
        mb * 1_000_000,
    )?;
    w.flush()?;
    println!("{}: {n} bytes", path.display());
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: gen_corpus day OUT | bench OUT MB | short OUT MB | big FILE MB",
        )
    };
    let mb = |s: Option<&String>| s.and_then(|s| s.parse().ok()).ok_or_else(usage);
    match args.first().map(String::as_str) {
        Some("day") => day(Path::new(args.get(1).ok_or_else(usage)?)),
        Some("bench") => bench(
            Path::new(args.get(1).ok_or_else(usage)?),
            mb(args.get(2))?,
            &TYPES,
        ),
        Some("short") => bench(
            Path::new(args.get(1).ok_or_else(usage)?),
            mb(args.get(2))?,
            &SHORT_TYPES,
        ),
        Some("big") => big(Path::new(args.get(1).ok_or_else(usage)?), mb(args.get(2))?),
        _ => Err(usage()),
    }
}
