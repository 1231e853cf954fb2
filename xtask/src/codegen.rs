//! The message generator: Kafka JSON spec -> Rust structs with `Message` impls.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// Spec folders read, relative to the spec root, and the kinds of file they hold.
const SPEC_DIRS: &[&str] = &["clients", "group-coordinator", "transaction-coordinator"];

#[derive(Clone, Copy, Debug, PartialEq)]
struct Versions {
    min: i16,
    max: i16, // i16::MAX = open-ended
}

impl Versions {
    const NONE: Versions = Versions { min: 1, max: 0 };

    fn parse(s: &str) -> Result<Versions, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Versions::NONE);
        }
        if let Some(min) = s.strip_suffix('+') {
            return Ok(Versions {
                min: num(min)?,
                max: i16::MAX,
            });
        }
        if let Some((a, b)) = s.split_once('-') {
            return Ok(Versions {
                min: num(a)?,
                max: num(b)?,
            });
        }
        let v = num(s)?;
        Ok(Versions { min: v, max: v })
    }

    fn is_none(&self) -> bool {
        self.min > self.max
    }

    fn intersect(&self, o: &Versions) -> Versions {
        Versions {
            min: self.min.max(o.min),
            max: self.max.min(o.max),
        }
    }

    /// A Rust condition on `version`, given the versions the enclosing message can have.
    fn condition(&self, within: &Versions) -> Option<String> {
        let v = self.intersect(within);
        if v.is_none() {
            return Some("false".into());
        }
        let lo = (v.min > within.min).then(|| format!("version >= {}", v.min));
        let hi = (v.max < within.max).then(|| format!("version <= {}", v.max));
        match (lo, hi) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a),
            (Some(a), Some(b)) => Some(format!("{a} && {b}")),
        }
    }
}

fn num(s: &str) -> Result<i16, String> {
    s.trim().parse().map_err(|_| format!("bad version {s:?}"))
}

#[derive(Clone, Debug, PartialEq)]
enum Ty {
    Bool,
    I8,
    I16,
    U16,
    I32,
    I64,
    F64,
    Str,
    Bytes,
    Records,
    Uuid,
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    fn parse(s: &str) -> Ty {
        if let Some(inner) = s.strip_prefix("[]") {
            return Ty::Array(Box::new(Ty::parse(inner)));
        }
        match s {
            "bool" => Ty::Bool,
            "int8" => Ty::I8,
            "int16" => Ty::I16,
            "uint16" => Ty::U16,
            "int32" => Ty::I32,
            "int64" => Ty::I64,
            "float64" => Ty::F64,
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            "uuid" => Ty::Uuid,
            other => Ty::Struct(other.to_string()),
        }
    }

    fn rust(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "i8".into(),
            Ty::I16 => "i16".into(),
            Ty::U16 => "u16".into(),
            Ty::I32 => "i32".into(),
            Ty::I64 => "i64".into(),
            Ty::F64 => "f64".into(),
            Ty::Str => "String".into(),
            Ty::Bytes | Ty::Records => "Bytes".into(),
            Ty::Uuid => "Uuid".into(),
            Ty::Struct(n) => n.clone(),
            Ty::Array(t) => format!("Vec<{}>", t.rust()),
        }
    }

    /// Types whose null is distinct from their empty value.
    fn can_be_null(&self) -> bool {
        matches!(self, Ty::Str | Ty::Bytes | Ty::Records | Ty::Struct(_) | Ty::Array(_))
    }
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    rust_name: String,
    ty: Ty,
    versions: Versions,
    nullable: Versions,
    tagged: Option<(Versions, u32)>,
    default: Option<String>,
    /// Field-level override of flexible versions (the request header's ClientId is "none").
    flexible: Option<Versions>,
    about: String,
}

impl Field {
    /// Records are always optional in Rust: Kafka allows null record sets.
    fn optional(&self) -> bool {
        self.ty == Ty::Records || (!self.nullable.is_none() && self.ty.can_be_null())
    }

    fn rust_type(&self) -> String {
        if self.optional() {
            format!("Option<{}>", self.ty.rust())
        } else {
            self.ty.rust()
        }
    }
}

#[derive(Clone, Debug)]
struct StructDef {
    name: String,
    fields: Vec<Field>,
    about: String,
}

struct Spec {
    name: String,
    kind: String,
    api_key: Option<i16>,
    valid: Versions,
    flexible: Versions,
    structs: Vec<StructDef>, // the top-level struct first
    file_stem: String,
}

pub fn run(spec_root: &Path, out_dir: &Path, check: bool) -> Result<(), String> {
    let mut specs = Vec::new();
    for dir in SPEC_DIRS {
        let path = spec_root.join(dir);
        let mut entries: Vec<_> = fs::read_dir(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        for p in entries {
            let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let spec = parse_spec(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            specs.push(spec);
        }
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for s in &specs {
        files.insert(format!("{}.rs", s.file_stem), rustfmt(&emit_spec(s))?);
    }
    files.insert("mod.rs".into(), rustfmt(&emit_mod(&specs))?);
    write_or_check(out_dir, &files, check)
}

/// Formats generated source with the project's rustfmt settings, so `cargo fmt --check` passes.
fn rustfmt(source: &str) -> Result<String, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rustfmt.toml");
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--config-path"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("rustfmt stdin")?;
    let text = source.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked")?
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("rustfmt failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

fn write_or_check(out_dir: &Path, files: &BTreeMap<String, String>, check: bool) -> Result<(), String> {
    if check {
        let mut stale = Vec::new();
        for (name, text) in files {
            let existing = fs::read_to_string(out_dir.join(name)).unwrap_or_default();
            if &existing != text {
                stale.push(name.clone());
            }
        }
        let on_disk = fs::read_dir(out_dir).map_err(|e| e.to_string())?;
        for e in on_disk.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if !files.contains_key(&n) {
                stale.push(n);
            }
        }
        if !stale.is_empty() {
            return Err(format!(
                "generated code is stale, run `cargo run -p xtask -- codegen`: {stale:?}"
            ));
        }
        return Ok(());
    }
    fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
    for e in fs::read_dir(out_dir).map_err(|e| e.to_string())?.flatten() {
        if !files.contains_key(&e.file_name().to_string_lossy().to_string()) {
            fs::remove_file(e.path()).map_err(|e| e.to_string())?;
        }
    }
    for (name, text) in files {
        fs::write(out_dir.join(name), text).map_err(|e| e.to_string())?;
    }
    println!("wrote {} files to {}", files.len(), out_dir.display());
    Ok(())
}

/// The spec files carry `//` comments, which JSON does not allow.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut cut = line.len();
        for (i, c) in line.char_indices() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            }
            if !in_str && c == '/' && prev == '/' {
                cut = i - 1;
                break;
            }
            prev = c;
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

fn parse_spec(text: &str) -> Result<Spec, String> {
    let v: Value = serde_json::from_str(&strip_comments(text)).map_err(|e| e.to_string())?;
    let name = str_of(&v, "name")?.to_string();
    let kind = str_of(&v, "type")?.to_string();
    let valid = Versions::parse(v.get("validVersions").and_then(Value::as_str).unwrap_or("0"))?;
    let flexible = Versions::parse(v.get("flexibleVersions").and_then(Value::as_str).unwrap_or("none"))?;
    let api_key = v.get("apiKey").and_then(Value::as_i64).map(|k| k as i16);
    let mut structs = Vec::new();
    let top_fields = parse_fields(v.get("fields"), &mut structs)?;
    let mut all = vec![StructDef {
        name: name.clone(),
        fields: top_fields,
        about: String::new(),
    }];
    if let Some(Value::Array(common)) = v.get("commonStructs") {
        for c in common {
            let cname = str_of(c, "name")?.to_string();
            let fields = parse_fields(c.get("fields"), &mut structs)?;
            structs.push(StructDef {
                name: cname,
                fields,
                about: String::new(),
            });
        }
    }
    all.extend(structs);
    Ok(Spec {
        file_stem: snake(&name),
        name,
        kind,
        api_key,
        valid,
        flexible,
        structs: all,
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing {key}"))
}

fn parse_fields(v: Option<&Value>, structs: &mut Vec<StructDef>) -> Result<Vec<Field>, String> {
    let Some(Value::Array(items)) = v else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in items {
        let name = str_of(f, "name")?.to_string();
        let ty = Ty::parse(str_of(f, "type")?);
        // A tagged-only field may omit `versions`; it then exists where it is tagged.
        let versions_text = f
            .get("versions")
            .or_else(|| f.get("taggedVersions"))
            .and_then(Value::as_str);
        let versions = Versions::parse(versions_text.ok_or("missing versions")?)?;
        let nullable = match f.get("nullableVersions").and_then(Value::as_str) {
            Some(s) => Versions::parse(s)?,
            None => Versions::NONE,
        };
        let tagged = match f.get("taggedVersions").and_then(Value::as_str) {
            Some(s) => {
                let tag = match f.get("tag") {
                    Some(Value::Number(n)) => n.as_u64(),
                    Some(Value::String(s)) => s.parse().ok(),
                    _ => None,
                }
                .ok_or("tagged field without tag")?;
                Some((Versions::parse(s)?, tag as u32))
            }
            None => None,
        };
        let default = match f.get("default") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let flexible = match f.get("flexibleVersions").and_then(Value::as_str) {
            Some(s) => Some(Versions::parse(s)?),
            None => None,
        };
        if f.get("fields").is_some() {
            let struct_name = match &ty {
                Ty::Struct(n) => n.clone(),
                Ty::Array(inner) => match inner.as_ref() {
                    Ty::Struct(n) => n.clone(),
                    _ => return Err(format!("{name}: inline fields on a non-struct array")),
                },
                _ => return Err(format!("{name}: inline fields on a primitive")),
            };
            let fields = parse_fields(f.get("fields"), structs)?;
            let about = f.get("about").and_then(Value::as_str).unwrap_or("").to_string();
            structs.push(StructDef {
                name: struct_name,
                fields,
                about,
            });
        }
        let about = f.get("about").and_then(Value::as_str).unwrap_or("").to_string();
        out.push(Field {
            rust_name: rust_ident(&snake(&name)),
            name,
            ty,
            versions,
            nullable,
            tagged,
            default,
            flexible,
            about,
        });
    }
    Ok(out)
}

/// `ThrottleTimeMs` -> `throttle_time_ms`, `IsrNodes` -> `isr_nodes`, `ZkMigrationReady` -> `zk_migration_ready`.
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) => {
                    p.is_ascii_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
                }
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn rust_ident(s: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "type", "match", "ref", "mod", "fn", "struct", "enum", "loop", "move", "self", "use", "where", "async",
        "await", "dyn", "impl", "in", "static", "const", "crate", "super", "trait", "unsafe", "box", "yield",
        "override", "final", "abstract", "virtual", "macro", "priv", "typeof", "become", "do", "try",
    ];
    if KEYWORDS.contains(&s) {
        format!("r#{s}")
    } else {
        s.to_string()
    }
}

fn parse_int_default(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(h) = s.strip_prefix("-0x") {
        return i64::from_str_radix(h, 16).ok().map(|v| -v);
    }
    s.parse().ok()
}

/// The Rust expression for a field's default value.
fn default_expr(f: &Field) -> String {
    let d = f.default.as_deref();
    let inner = match &f.ty {
        Ty::Bool => return (d == Some("true")).to_string(),
        Ty::I8 | Ty::I16 | Ty::U16 | Ty::I32 | Ty::I64 => {
            let v = d.and_then(parse_int_default).unwrap_or(0);
            return format!("{v}{}", f.ty.rust());
        }
        Ty::F64 => return format!("{}f64", d.and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0)),
        Ty::Uuid => return "Uuid::ZERO".into(),
        Ty::Str => match d {
            Some(s) if !s.is_empty() && s != "null" => format!("String::from({s:?})"),
            _ => "String::new()".into(),
        },
        Ty::Bytes | Ty::Records => "Bytes::new()".into(),
        Ty::Struct(n) => format!("{n}::default()"),
        Ty::Array(_) => "Vec::new()".into(),
    };
    if f.optional() {
        if d == Some("null") || (d.is_none() && matches!(f.ty, Ty::Struct(_) | Ty::Records)) {
            "None".into()
        } else {
            format!("Some({inner})")
        }
    } else {
        inner
    }
}

fn read_scalar(ty: &Ty, compact: &str, nullable_read: bool) -> String {
    match ty {
        Ty::Bool => "read_bool(buf)?".into(),
        Ty::I8 => "read_i8(buf)?".into(),
        Ty::I16 => "read_i16(buf)?".into(),
        Ty::U16 => "read_u16(buf)?".into(),
        Ty::I32 => "read_i32(buf)?".into(),
        Ty::I64 => "read_i64(buf)?".into(),
        Ty::F64 => "read_f64(buf)?".into(),
        Ty::Uuid => "read_uuid(buf)?".into(),
        Ty::Str if nullable_read => format!("read_nullable_string(buf, {compact})?"),
        Ty::Str => format!("read_string(buf, {compact})?"),
        Ty::Bytes | Ty::Records if nullable_read => format!("read_nullable_bytes(buf, {compact})?"),
        Ty::Bytes | Ty::Records => format!("read_bytes(buf, {compact})?"),
        Ty::Struct(n) if nullable_read => {
            format!("if read_i8(buf)? < 0 {{ None }} else {{ Some({n}::decode(buf, version)?) }}")
        }
        Ty::Struct(n) => format!("{n}::decode(buf, version)?"),
        Ty::Array(inner) => {
            let item = read_scalar(inner, compact, false);
            let arr = format!("read_array(buf, {compact}, |buf| Ok({item}))?");
            if nullable_read {
                arr
            } else {
                format!("{arr}.ok_or(DecodeError::UnexpectedNull)?")
            }
        }
    }
}

fn read_expr(f: &Field, compact: &str) -> String {
    read_scalar(&f.ty, compact, f.optional())
}

/// Statements writing `value` (an expression of the field's non-optional type, by reference
/// for non-Copy types) to `buf`.
fn write_value(ty: &Ty, value: &str, compact: &str, name: &str) -> String {
    match ty {
        Ty::Bool => format!("write_bool(buf, {value});"),
        Ty::I8 => format!("write_i8(buf, {value});"),
        Ty::I16 => format!("write_i16(buf, {value});"),
        Ty::U16 => format!("write_u16(buf, {value});"),
        Ty::I32 => format!("write_i32(buf, {value});"),
        Ty::I64 => format!("write_i64(buf, {value});"),
        Ty::F64 => format!("write_f64(buf, {value});"),
        Ty::Uuid => format!("write_uuid(buf, &{value});"),
        Ty::Str => format!("write_string(buf, &{value}, {compact}, {name:?})?;"),
        Ty::Bytes => format!("write_bytes(buf, &{value}, {compact}, {name:?})?;"),
        // Record sets go through the sink, which may send them as their own buffer.
        Ty::Records => format!("write_records(buf, &{value}, {compact}, {name:?})?;"),
        Ty::Struct(_) => format!("{value}.encode(buf, version)?;"),
        Ty::Array(inner) => {
            let item = match inner.as_ref() {
                Ty::Str | Ty::Bytes | Ty::Records | Ty::Struct(_) | Ty::Array(_) => {
                    write_value(inner, "(*item)", compact, name)
                }
                _ => write_value(inner, "*item", compact, name),
            };
            format!("write_array_len(buf, Some({value}.len()), {compact}, {name:?})?; for item in {value}.iter() {{ {item} }}")
        }
    }
}

fn write_stmt(f: &Field, compact: &str, within: &Versions) -> String {
    let name = f.name.as_str();
    let this = format!("self.{}", f.rust_name);
    let copy = matches!(
        f.ty,
        Ty::Bool | Ty::I8 | Ty::I16 | Ty::U16 | Ty::I32 | Ty::I64 | Ty::F64
    );
    if !f.optional() {
        return write_value(&f.ty, &this, compact, name);
    }
    let present = write_value(&f.ty, "(*v)", compact, name);
    let null = match &f.ty {
        Ty::Str => format!("write_nullable_string(buf, None, {compact}, {name:?})?;"),
        Ty::Bytes | Ty::Records => format!("write_nullable_bytes(buf, None, {compact}, {name:?})?;"),
        Ty::Array(_) => format!("write_array_len(buf, None, {compact}, {name:?})?;"),
        Ty::Struct(_) => "write_i8(buf, -1);".into(),
        _ => unreachable!("copy types are never optional"),
    };
    let _ = copy;
    let null_ok = f.nullable.condition(within);
    let null_branch = match null_ok {
        None => null,
        Some(cond) => format!("if !({cond}) {{ return Err(EncodeError::NullNotAllowed({name:?})); }} {null}"),
    };
    let marker = if matches!(f.ty, Ty::Struct(_)) {
        "write_i8(buf, 1); "
    } else {
        ""
    };
    format!("match &{this} {{ None => {{ {null_branch} }} Some(v) => {{ {marker}{present} }} }}")
}

fn sample_scalar(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "g.coin()".into(),
        Ty::I8 => "g.next_u64() as i8".into(),
        Ty::I16 => "g.next_u64() as i16".into(),
        Ty::U16 => "g.next_u64() as u16".into(),
        Ty::I32 => "g.next_u64() as i32".into(),
        Ty::I64 => "g.next_u64() as i64".into(),
        Ty::F64 => "(g.next_u64() as i32) as f64".into(),
        Ty::Uuid => "g.uuid()".into(),
        Ty::Str => "g.string()".into(),
        Ty::Bytes | Ty::Records => "g.bytes()".into(),
        Ty::Struct(n) => format!("{n}::sample(g, version)"),
        Ty::Array(inner) => format!("(0..g.array_len()).map(|_| {}).collect()", sample_scalar(inner)),
    }
}

fn sample_expr(f: &Field, within: &Versions) -> String {
    let inner = sample_scalar(&f.ty);
    if !f.optional() {
        return inner;
    }
    match f.nullable.condition(within) {
        _ if f.nullable.is_none() => format!("Some({inner})"),
        None => format!("if g.coin() {{ None }} else {{ Some({inner}) }}"),
        Some(c) => format!("if ({c}) && g.coin() {{ None }} else {{ Some({inner}) }}"),
    }
}

fn emit_sample(out: &mut String, s: &StructDef, within: &Versions) {
    let _ = writeln!(
        out,
        "#[cfg(any(test, feature = \"sample\"))]\nimpl crate::sample::Sample for {} {{",
        s.name
    );
    let _ = writeln!(out, "    #[allow(unused_variables)]\n    fn sample(g: &mut crate::sample::SampleGen, version: i16) -> Self {{\n        #[allow(unused_imports)]\n        use crate::sample::Sample;\n        let mut this = Self::default();");
    for f in &s.fields {
        let present = match f.tagged {
            Some((tv, _)) => tv.intersect(&f.versions),
            None => f.versions,
        };
        let stmt = format!("this.{} = {};", f.rust_name, sample_expr(f, within));
        match present.condition(within) {
            None => {
                let _ = writeln!(out, "        {stmt}");
            }
            Some(c) => {
                let _ = writeln!(out, "        if {c} {{ {stmt} }}");
            }
        }
    }
    let _ = writeln!(out, "        this\n    }}\n}}\n");
}

fn emit_struct(out: &mut String, s: &StructDef, spec: &Spec) {
    let within = spec.valid;
    if !s.about.is_empty() {
        let _ = writeln!(out, "/// {}", s.about.replace('\n', " "));
    }
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]\npub struct {} {{", s.name);
    for f in &s.fields {
        if !f.about.is_empty() {
            let _ = writeln!(out, "    /// {}", f.about.replace('\n', " "));
        }
        let _ = writeln!(out, "    pub {}: {},", f.rust_name, f.rust_type());
    }
    let _ = writeln!(out, "    /// Tagged fields this code does not know, kept for re-encoding.\n    pub unknown_tagged_fields: Vec<TaggedField>,\n}}\n");

    let _ = writeln!(
        out,
        "impl Default for {} {{\n    fn default() -> Self {{\n        Self {{",
        s.name
    );
    for f in &s.fields {
        let _ = writeln!(out, "            {}: {},", f.rust_name, default_expr(f));
    }
    let _ = writeln!(
        out,
        "            unknown_tagged_fields: Vec::new(),\n        }}\n    }}\n}}\n"
    );

    let flex_cond = match spec.flexible.condition(&within) {
        None if spec.flexible.is_none() => "false".to_string(),
        None => "true".to_string(),
        Some(c) => c,
    };
    let _ = writeln!(out, "impl Message for {} {{", s.name);
    // decode
    let _ = writeln!(
        out,
        "    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {{"
    );
    let _ = writeln!(out, "        let flexible = {flex_cond};\n        let _ = (flexible, version);\n        let mut this = Self::default();");
    for f in s.fields.iter().filter(|f| f.tagged.is_none()) {
        let compact = compact_expr(f, &within);
        let stmt = format!("this.{} = {};", f.rust_name, read_expr(f, &compact));
        match f.versions.condition(&within) {
            None => {
                let _ = writeln!(out, "        {stmt}");
            }
            Some(c) => {
                let _ = writeln!(out, "        if {c} {{ {stmt} }}");
            }
        }
    }
    let tagged: Vec<&Field> = s.fields.iter().filter(|f| f.tagged.is_some()).collect();
    let _ = writeln!(out, "        if flexible {{");
    if tagged.is_empty() {
        let _ = writeln!(
            out,
            "            this.unknown_tagged_fields = read_tagged_fields(buf, |_, _| Ok(false))?;"
        );
    } else {
        let _ = writeln!(out, "            this.unknown_tagged_fields = read_tagged_fields(buf, |tag, buf| {{\n                match tag {{");
        for f in &tagged {
            let (tv, tag) = f.tagged.expect("filtered");
            let cond = tv
                .intersect(&f.versions)
                .condition(&within)
                .map(|c| format!(" if {c}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "                    {tag}{cond} => {{ this.{} = {}; Ok(true) }}",
                f.rust_name,
                read_expr(f, "true")
            );
        }
        let _ = writeln!(
            out,
            "                    _ => Ok(false),\n                }}\n            }})?;"
        );
    }
    let _ = writeln!(out, "        }}\n        Ok(this)\n    }}\n");
    // encode
    let _ = writeln!(
        out,
        "    fn encode<S: Sink + ?Sized>(&self, buf: &mut S, version: i16) -> Result<(), EncodeError> {{"
    );
    let _ = writeln!(
        out,
        "        let flexible = {flex_cond};\n        let _ = (flexible, version);"
    );
    for f in s.fields.iter().filter(|f| f.tagged.is_none()) {
        let compact = compact_expr(f, &within);
        let stmt = write_stmt(f, &compact, &within);
        match f.versions.condition(&within) {
            None => {
                let _ = writeln!(out, "        {stmt}");
            }
            Some(c) => {
                let _ = writeln!(out, "        if {c} {{ {stmt} }}");
            }
        }
    }
    let _ = writeln!(out, "        if flexible {{");
    if tagged.is_empty() {
        let _ = writeln!(
            out,
            "            write_tagged_fields(buf, Vec::new(), &self.unknown_tagged_fields)?;"
        );
    } else {
        let _ = writeln!(out, "            let mut tagged: Vec<(u32, BytesMut)> = Vec::new();");
        for f in &tagged {
            let (tv, tag) = f.tagged.expect("filtered");
            let mut conds = vec![format!("self.{} != {}", f.rust_name, default_expr(f))];
            if let Some(c) = tv.intersect(&f.versions).condition(&within) {
                conds.insert(0, c);
            }
            let stmt = write_stmt(f, "true", &within);
            let _ = writeln!(
                out,
                "            if {} {{ let mut field = BytesMut::new(); {{ let buf = &mut field; {stmt} }} tagged.push(({tag}, field)); }}",
                conds.join(" && ")
            );
        }
        let _ = writeln!(
            out,
            "            write_tagged_fields(buf, tagged, &self.unknown_tagged_fields)?;"
        );
    }
    let _ = writeln!(out, "        }}\n        Ok(())\n    }}\n}}\n");
}

fn compact_expr(f: &Field, within: &Versions) -> String {
    match f.flexible {
        None => "flexible".into(),
        Some(v) if v.is_none() => "false".into(),
        Some(v) => match v.condition(within) {
            None => "flexible".into(),
            Some(c) => format!("(flexible && {c})"),
        },
    }
}

fn emit_spec(spec: &Spec) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by `cargo run -p xtask -- codegen` from Kafka's {}.json. Do not edit.\n",
        spec.name
    );
    let _ = writeln!(
        out,
        "#[allow(unused_imports)]\nuse crate::codec::*;\n#[allow(unused_imports)]\nuse bytes::{{Bytes, BytesMut}};\n"
    );
    if let Some(k) = spec.api_key {
        let _ = writeln!(
            out,
            "/// The API key this message belongs to.\npub const API_KEY: i16 = {k};"
        );
    }
    let _ = writeln!(
        out,
        "/// The versions Kafka's specification defines.\npub const VALID_VERSIONS: (i16, i16) = ({}, {});",
        spec.valid.min, spec.valid.max
    );
    let flex = if spec.flexible.is_none() {
        i16::MAX
    } else {
        spec.flexible.min
    };
    let _ = writeln!(
        out,
        "/// The first flexible version (`i16::MAX` when none is).\npub const FIRST_FLEXIBLE_VERSION: i16 = {flex};\n"
    );
    let mut seen = std::collections::HashSet::new();
    for s in &spec.structs {
        // A common struct can be referenced from several places; emit it once.
        if seen.insert(s.name.clone()) {
            emit_struct(&mut out, s, spec);
            emit_sample(&mut out, s, &spec.valid);
        }
    }
    out
}

fn api_name(spec: &Spec) -> String {
    spec.name
        .trim_end_matches("Request")
        .trim_end_matches("Response")
        .to_string()
}

fn emit_mod(specs: &[Spec]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "// @generated by `cargo run -p xtask -- codegen`. Do not edit.\n");
    let _ = writeln!(out, "//! Kafka message types, one module per JSON specification.\n");
    for s in specs {
        let _ = writeln!(out, "pub mod {};", s.file_stem);
    }
    let requests: Vec<&Spec> = specs.iter().filter(|s| s.kind == "request").collect();
    let response_of = |req: &Spec| {
        specs
            .iter()
            .find(|s| s.kind == "response" && s.api_key == req.api_key)
            .map(|s| s.file_stem.clone())
    };

    let _ = writeln!(
        out,
        "\nuse crate::codec::{{DecodeError, EncodeError, Message, Sink}};\nuse bytes::Bytes;\n"
    );
    let _ = writeln!(out, "/// Every Kafka API, by key.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(i16)]\npub enum ApiKey {{");
    for r in &requests {
        let _ = writeln!(out, "    {} = {},", api_name(r), r.api_key.unwrap_or(-1));
    }
    let _ = writeln!(out, "}}\n\nimpl ApiKey {{\n    pub const ALL: &'static [ApiKey] = &[");
    for r in &requests {
        let _ = writeln!(out, "        ApiKey::{},", api_name(r));
    }
    let _ = writeln!(
        out,
        "    ];\n\n    pub fn from_i16(key: i16) -> Option<ApiKey> {{\n        match key {{"
    );
    for r in &requests {
        let _ = writeln!(
            out,
            "            {} => Some(ApiKey::{}),",
            r.api_key.unwrap_or(-1),
            api_name(r)
        );
    }
    let _ = writeln!(out, "            _ => None,\n        }}\n    }}\n\n    /// Kafka's name of the API (as in request metrics).\n    pub fn name(self) -> &'static str {{\n        match self {{");
    for r in &requests {
        let _ = writeln!(out, "            ApiKey::{0} => \"{0}\",", api_name(r));
    }
    let _ = writeln!(out, "        }}\n    }}\n\n    /// The request versions Kafka's specification defines.\n    pub fn valid_versions(self) -> (i16, i16) {{\n        match self {{");
    for r in &requests {
        let _ = writeln!(
            out,
            "            ApiKey::{} => {}::VALID_VERSIONS,",
            api_name(r),
            r.file_stem
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n\n    /// Whether `version` of this API uses the flexible (compact, tagged) encoding.\n    pub fn is_flexible(self, version: i16) -> bool {{\n        let first = match self {{");
    for r in &requests {
        let _ = writeln!(
            out,
            "            ApiKey::{} => {}::FIRST_FLEXIBLE_VERSION,",
            api_name(r),
            r.file_stem
        );
    }
    let _ = writeln!(out, "        }};\n        version >= first\n    }}\n\n    /// Request header version: 2 for flexible requests, else 1 (v0 headers are only for ControlledShutdown v0).\n    pub fn request_header_version(self, version: i16) -> i16 {{\n        if self == ApiKey::ControlledShutdown && version == 0 {{ return 0; }}\n        if self.is_flexible(version) {{ 2 }} else {{ 1 }}\n    }}\n\n    /// Response header version: 1 for flexible responses, else 0. ApiVersions always answers\n    /// with header v0 so that a client can read it whatever version it sent.\n    pub fn response_header_version(self, version: i16) -> i16 {{\n        if self == ApiKey::ApiVersions {{ return 0; }}\n        if self.is_flexible(version) {{ 1 }} else {{ 0 }}\n    }}\n}}\n");

    // Request enum
    let _ = writeln!(
        out,
        "/// A decoded request body of any API.\n#[derive(Debug, Clone, PartialEq)]\npub enum RequestBody {{"
    );
    for r in &requests {
        let _ = writeln!(out, "    {}({}::{}),", api_name(r), r.file_stem, r.name);
    }
    let _ = writeln!(out, "}}\n\nimpl RequestBody {{\n    /// Decodes a request body; the version must be one Kafka's specification defines.\n    pub fn decode(api_key: i16, version: i16, buf: &mut Bytes) -> Result<RequestBody, DecodeError> {{\n        let key = ApiKey::from_i16(api_key).ok_or(DecodeError::UnknownApiKey(api_key))?;\n        let (min, max) = key.valid_versions();\n        if version < min || version > max {{\n            return Err(DecodeError::UnsupportedVersion {{ api_key, version }});\n        }}\n        Ok(match key {{");
    for r in &requests {
        let _ = writeln!(
            out,
            "            ApiKey::{0} => RequestBody::{0}({1}::{2}::decode(buf, version)?),",
            api_name(r),
            r.file_stem,
            r.name
        );
    }
    let _ = writeln!(out, "        }})\n    }}\n\n    pub fn encode<S: Sink + ?Sized>(&self, buf: &mut S, version: i16) -> Result<(), EncodeError> {{\n        match self {{");
    for r in &requests {
        let _ = writeln!(
            out,
            "            RequestBody::{}(m) => m.encode(buf, version),",
            api_name(r)
        );
    }
    let _ = writeln!(
        out,
        "        }}\n    }}\n\n    pub fn api_key(&self) -> ApiKey {{\n        match self {{"
    );
    for r in &requests {
        let _ = writeln!(out, "            RequestBody::{0}(_) => ApiKey::{0},", api_name(r));
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");

    // Response enum
    let _ = writeln!(
        out,
        "/// A response body of any API.\n#[derive(Debug, Clone, PartialEq)]\npub enum ResponseBody {{"
    );
    for r in &requests {
        if let Some(resp) = response_of(r) {
            let _ = writeln!(out, "    {}({}::{}Response),", api_name(r), resp, api_name(r));
        }
    }
    let _ = writeln!(out, "}}\n\nimpl ResponseBody {{\n    pub fn decode(api_key: ApiKey, version: i16, buf: &mut Bytes) -> Result<ResponseBody, DecodeError> {{\n        Ok(match api_key {{");
    for r in &requests {
        if let Some(resp) = response_of(r) {
            let _ = writeln!(
                out,
                "            ApiKey::{0} => ResponseBody::{0}({1}::{0}Response::decode(buf, version)?),",
                api_name(r),
                resp
            );
        }
    }
    let _ = writeln!(out, "        }})\n    }}\n\n    pub fn encode<S: Sink + ?Sized>(&self, buf: &mut S, version: i16) -> Result<(), EncodeError> {{\n        match self {{");
    for r in &requests {
        if response_of(r).is_some() {
            let _ = writeln!(
                out,
                "            ResponseBody::{}(m) => m.encode(buf, version),",
                api_name(r)
            );
        }
    }
    let _ = writeln!(
        out,
        "        }}\n    }}\n\n    pub fn api_key(&self) -> ApiKey {{\n        match self {{"
    );
    for r in &requests {
        if response_of(r).is_some() {
            let _ = writeln!(out, "            ResponseBody::{0}(_) => ApiKey::{0},", api_name(r));
        }
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
    for r in &requests {
        if let Some(resp) = response_of(r) {
            let _ = writeln!(out, "impl From<{resp}::{0}Response> for ResponseBody {{\n    fn from(m: {resp}::{0}Response) -> Self {{\n        ResponseBody::{0}(m)\n    }}\n}}\n", api_name(r));
        }
    }
    // Generic error responses, for requests the broker decodes but does not serve.
    let _ = writeln!(out, "impl ResponseBody {{\n    /// A response of `api_key` carrying only a top-level error code, for APIs whose response has\n    /// one (`None` otherwise).\n    pub fn top_level_error(api_key: ApiKey, error_code: i16) -> Option<ResponseBody> {{\n        match api_key {{");
    for r in &requests {
        let Some(resp) = response_of(r) else { continue };
        let Some(spec) = specs.iter().find(|s| s.file_stem == resp) else {
            continue;
        };
        let has_error = spec.structs[0].fields.iter().any(|f| {
            f.rust_name == "error_code" && f.ty == Ty::I16 && f.versions.min == spec.valid.min && f.tagged.is_none()
        });
        if has_error {
            let _ = writeln!(out, "            ApiKey::{0} => Some(ResponseBody::{0}({1}::{0}Response {{ error_code, ..Default::default() }})),", api_name(r), resp);
        }
    }
    let _ = writeln!(out, "            _ => None,\n        }}\n    }}\n}}\n");
    // Round-trip driver for the property tests: every message, every version.
    let _ = writeln!(out, "/// Encodes and decodes a random value of every message at every version; returns how many\n/// were checked, or the first mismatch.\n#[cfg(test)]\npub(crate) fn round_trip_every_message(seed: u64) -> Result<usize, String> {{\n    let mut g = crate::sample::SampleGen::new(seed);\n    let mut checked = 0;");
    for s in specs {
        let _ = writeln!(
            out,
            "    checked += round_trip::<{0}::{1}>(&mut g, {0}::VALID_VERSIONS, \"{1}\")?;",
            s.file_stem, s.name
        );
    }
    let _ = writeln!(out, "    Ok(checked)\n}}\n");
    let _ = writeln!(out, "#[cfg(test)]\nfn round_trip<T: Message + crate::sample::Sample + PartialEq + std::fmt::Debug>(\n    g: &mut crate::sample::SampleGen,\n    (min, max): (i16, i16),\n    name: &str,\n) -> Result<usize, String> {{\n    for version in min..=max {{\n        let value = T::sample(g, version);\n        let mut buf = bytes::BytesMut::new();\n        value.encode(&mut buf, version).map_err(|e| format!(\"{{name}} v{{version}}: encode: {{e}}\"))?;\n        let mut bytes = buf.freeze();\n        let back = T::decode(&mut bytes, version).map_err(|e| format!(\"{{name}} v{{version}}: decode: {{e}} of {{value:?}}\"))?;\n        if back != value {{\n            return Err(format!(\"{{name}} v{{version}}: {{value:?}} came back as {{back:?}}\"));\n        }}\n        if !bytes.is_empty() {{\n            return Err(format!(\"{{name}} v{{version}}: {{}} bytes left over\", bytes.len()));\n        }}\n    }}\n    Ok((max - min + 1) as usize)\n}}\n");
    // Typed request trait
    let _ = writeln!(out, "/// A request type with its API key and response type, for typed clients.\npub trait Request: Message {{\n    const API_KEY: ApiKey;\n    type Response: Message;\n}}\n");
    for r in &requests {
        if let Some(resp) = response_of(r) {
            let _ = writeln!(out, "impl Request for {}::{} {{\n    const API_KEY: ApiKey = ApiKey::{};\n    type Response = {resp}::{}Response;\n}}\n", r.file_stem, r.name, api_name(r), api_name(r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_kafka_names() {
        assert_eq!(snake("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake("IsrNodes"), "isr_nodes");
        assert_eq!(snake("ApiKey"), "api_key");
        assert_eq!(snake("ProducerIdStart"), "producer_id_start");
        assert_eq!(snake("TopicIDs"), "topic_i_ds");
    }

    #[test]
    fn version_ranges_parse() {
        assert_eq!(Versions::parse("3+").unwrap(), Versions { min: 3, max: i16::MAX });
        assert_eq!(Versions::parse("1-4").unwrap(), Versions { min: 1, max: 4 });
        assert!(Versions::parse("none").unwrap().is_none());
        let within = Versions { min: 0, max: 9 };
        assert_eq!(Versions::parse("0+").unwrap().condition(&within), None);
        assert_eq!(
            Versions::parse("3+").unwrap().condition(&within).as_deref(),
            Some("version >= 3")
        );
    }
}
