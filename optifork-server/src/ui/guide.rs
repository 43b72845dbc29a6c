//! The integration guide: for a flag, config or experiment, copy-ready code for Rust,
//! Python, Node, Go (OFREP/HTTP), Java (OFREP/HTTP) and curl, filled in with this server's
//! public URL and the entity's name.

use askama::Template;
use optifork_storage::{EntityKind, EntityRef};

use super::{Layout, Ui, UiReply};

/// One language's snippet.
pub struct Snippet {
    /// A stable id (`rust`, `python`, ...).
    pub id: &'static str,
    /// The tab's label.
    pub label: &'static str,
    /// How to install the client, if anything is needed.
    pub install: String,
    /// The code.
    pub code: String,
    /// A note under the code.
    pub note: &'static str,
}

/// What the guide is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A flag and its kind (`boolean`, `string`, `number`, `json`).
    Flag(&'a str, &'a str),
    /// A remote config.
    Config(&'a str),
    /// An experiment and the event its first metric counts.
    Experiment(&'a str, &'a str),
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The snippets for a target, against server `url` in environment `env`.
pub fn snippets(target: Target<'_>, url: &str, env: &str) -> Vec<Snippet> {
    let env_note = if env == optifork_core::model::DEFAULT_ENVIRONMENT {
        String::new()
    } else {
        format!("?environment={env}")
    };
    match target {
        Target::Flag(name, kind) => flag_snippets(name, kind, url, &env_note),
        Target::Config(name) => config_snippets(name, url, &env_note),
        Target::Experiment(name, event) => experiment_snippets(name, event, url, &env_note),
    }
}

const KEY_NOTE: &str =
    "Use an SDK key of this environment (API keys page); keep it out of source code.";

fn flag_snippets(name: &str, kind: &str, url: &str, env_q: &str) -> Vec<Snippet> {
    let n = q(name);
    let u = q(url);
    let (rust_call, py_call, node_call, go_call, java_call) = match kind {
        "string" => (
            format!(
                "let value = client.string_value({n}, &ctx, \"default\");\nprintln!(\"{name} = {{value}}\");"
            ),
            format!("value = client.string_value({n}, context, \"default\")"),
            format!("const value = client.stringValue({n}, context, \"default\");"),
            format!("value, err := client.StringValue(ctx, {n}, \"default\", evalCtx)"),
            format!("String value = client.getStringValue({n}, \"default\", ctx);"),
        ),
        "number" => (
            format!(
                "let value = client.number_value({n}, &ctx, 0.0);\nprintln!(\"{name} = {{value}}\");"
            ),
            format!("value = client.number_value({n}, context, 0.0)"),
            format!("const value = client.numberValue({n}, context, 0);"),
            format!("value, err := client.FloatValue(ctx, {n}, 0, evalCtx)"),
            format!("Double value = client.getDoubleValue({n}, 0.0, ctx);"),
        ),
        "json" => (
            format!(
                "let value = client.json_value({n}, &ctx, serde_json::json!({{}}));\nprintln!(\"{name} = {{value}}\");"
            ),
            format!("value = client.json_value({n}, context, {{}})"),
            format!("const value = client.jsonValue({n}, context, {{}});"),
            format!("value, err := client.ObjectValue(ctx, {n}, map[string]any{{}}, evalCtx)"),
            format!("Value value = client.getObjectValue({n}, new Value(), ctx);"),
        ),
        _ => (
            format!("if client.is_enabled({n}, &ctx) {{\n    // the new code path\n}}"),
            format!("if client.is_enabled({n}, context):\n    ...  # the new code path"),
            format!("if (client.isEnabled({n}, context)) {{\n  // the new code path\n}}"),
            format!("enabled, err := client.BooleanValue(ctx, {n}, false, evalCtx)"),
            format!("boolean enabled = client.getBooleanValue({n}, false, ctx);"),
        ),
    };
    vec![
        Snippet {
            id: "rust",
            label: "Rust",
            install: "cargo add optifork-sdk".into(),
            code: format!(
                "use optifork_sdk::{{Client, Context}};\n\n\
                 let client = Client::builder({u}, std::env::var(\"OPTIFORK_SDK_KEY\")?).build()?;\n\
                 let ctx = Context::new(\"user-123\").with(\"country\", \"US\");\n\
                 {rust_call}"
            ),
            note: "Evaluates in process (no network call per flag); the client keeps the ruleset fresh in the background.",
        },
        Snippet {
            id: "python",
            label: "Python",
            install: "pip install optifork".into(),
            code: format!(
                "import os\nimport optifork\n\n\
                 client = optifork.Client({u}, os.environ[\"OPTIFORK_SDK_KEY\"])\n\
                 context = {{\"user_id\": \"user-123\", \"country\": \"US\"}}\n\
                 {py_call}"
            ),
            note: "The Python package wraps the same Rust core: identical results, evaluated in process.",
        },
        Snippet {
            id: "node",
            label: "Node",
            install: "npm install optifork".into(),
            code: format!(
                "const {{ Client }} = require(\"optifork\");\n\n\
                 const client = new Client({u}, process.env.OPTIFORK_SDK_KEY);\n\
                 const context = {{ userId: \"user-123\", country: \"US\" }};\n\
                 {node_call}"
            ),
            note: "The Node package wraps the same Rust core: identical results, evaluated in process.",
        },
        Snippet {
            id: "go",
            label: "Go (OFREP)",
            install: "go get github.com/open-feature/go-sdk github.com/open-feature/go-sdk-contrib/providers/ofrep".into(),
            code: format!(
                "import (\n\t\"context\"\n\t\"os\"\n\n\
                 \tofrep \"github.com/open-feature/go-sdk-contrib/providers/ofrep\"\n\
                 \t\"github.com/open-feature/go-sdk/openfeature\"\n)\n\n\
                 provider := ofrep.NewProvider({u}, ofrep.WithBearerToken(os.Getenv(\"OPTIFORK_SDK_KEY\")))\n\
                 openfeature.SetProviderAndWait(provider)\n\
                 client := openfeature.NewClient(\"my-service\")\n\n\
                 ctx := context.Background()\n\
                 evalCtx := openfeature.NewEvaluationContext(\"user-123\", map[string]any{{\"country\": \"US\"}})\n\
                 {go_call}"
            ),
            note: "OpenFeature's OFREP provider evaluates remotely: POST /ofrep/v1/evaluate/flags/{key} with the SDK key.",
        },
        Snippet {
            id: "java",
            label: "Java (OFREP)",
            install: "dev.openfeature:sdk and dev.openfeature.contrib.providers:ofrep (Maven Central)".into(),
            code: format!(
                "import com.google.common.collect.ImmutableList;\n\
                 import com.google.common.collect.ImmutableMap;\n\
                 import dev.openfeature.contrib.providers.ofrep.OfrepProvider;\n\
                 import dev.openfeature.contrib.providers.ofrep.OfrepProviderOptions;\n\
                 import dev.openfeature.sdk.*;\n\n\
                 OfrepProviderOptions options = OfrepProviderOptions.builder()\n    \
                 .baseUrl({u})\n    \
                 .headers(ImmutableMap.of(\"Authorization\",\n        \
                 ImmutableList.of(\"Bearer \" + System.getenv(\"OPTIFORK_SDK_KEY\"))))\n    \
                 .build();\n\
                 OpenFeatureAPI.getInstance().setProviderAndWait(OfrepProvider.constructProvider(options));\n\
                 Client client = OpenFeatureAPI.getInstance().getClient();\n\n\
                 EvaluationContext ctx = new MutableContext(\"user-123\").add(\"country\", \"US\");\n\
                 {java_call}"
            ),
            note: "OpenFeature's OFREP provider evaluates remotely with the SDK key.",
        },
        Snippet {
            id: "curl",
            label: "curl",
            install: String::new(),
            code: format!(
                "# OFREP (what OpenFeature providers call)\n\
                 curl -X POST \"{url}/ofrep/v1/evaluate/flags/{name}{env_q}\" \\\n  \
                 -H \"Authorization: Bearer $OPTIFORK_SDK_KEY\" -H \"Content-Type: application/json\" \\\n  \
                 -d '{{\"context\": {{\"targetingKey\": \"user-123\", \"country\": \"US\"}}}}'\n\n\
                 # The seed's route: attributes as query parameters\n\
                 curl \"{url}/flags/{name}?user_id=user-123&country=US\" \\\n  \
                 -H \"Authorization: Bearer $OPTIFORK_SDK_KEY\""
            ),
            note: "Both answer with the value, the variant and the reason (SPLIT, TARGETING_MATCH, DISABLED...).",
        },
    ]
}

fn http_get_snippets(path: &str, url: &str) -> (String, String) {
    let go = format!(
        "import (\n\t\"encoding/json\"\n\t\"net/http\"\n\t\"os\"\n)\n\n\
         req, _ := http.NewRequest(\"GET\", \"{url}{path}\", nil)\n\
         req.Header.Set(\"Authorization\", \"Bearer \"+os.Getenv(\"OPTIFORK_SDK_KEY\"))\n\
         resp, err := http.DefaultClient.Do(req)\n\
         if err != nil {{\n\treturn err\n}}\n\
         defer resp.Body.Close()\n\
         var out map[string]any\n\
         json.NewDecoder(resp.Body).Decode(&out)"
    );
    let java = format!(
        "import java.net.URI;\n\
         import java.net.http.*;\n\n\
         HttpClient http = HttpClient.newHttpClient();\n\
         HttpRequest request = HttpRequest.newBuilder(URI.create(\"{url}{path}\"))\n    \
         .header(\"Authorization\", \"Bearer \" + System.getenv(\"OPTIFORK_SDK_KEY\"))\n    \
         .build();\n\
         String json = http.send(request, HttpResponse.BodyHandlers.ofString()).body();"
    );
    (go, java)
}

fn config_snippets(name: &str, url: &str, env_q: &str) -> Vec<Snippet> {
    let n = q(name);
    let u = q(url);
    let sep = if env_q.is_empty() { "?" } else { "&" };
    let path = format!("/configs/{name}{env_q}{sep}user_id=user-123&country=US");
    let (go, java) = http_get_snippets(&path, url);
    vec![
        Snippet {
            id: "rust",
            label: "Rust",
            install: "cargo add optifork-sdk".into(),
            code: format!(
                "use optifork_sdk::{{Client, Context}};\n\n\
                 let client = Client::builder({u}, std::env::var(\"OPTIFORK_SDK_KEY\")?).build()?;\n\
                 let ctx = Context::new(\"user-123\").with(\"country\", \"US\");\n\
                 // The config's value with the overrides that match this user merged in.\n\
                 if let Some(config) = client.config({n}, &ctx) {{\n    println!(\"{{config}}\");\n}}"
            ),
            note: "Resolved in process: overrides for matching segments are deep-merged over the general value.",
        },
        Snippet {
            id: "python",
            label: "Python",
            install: "pip install optifork".into(),
            code: format!(
                "import os\nimport optifork\n\n\
                 client = optifork.Client({u}, os.environ[\"OPTIFORK_SDK_KEY\"])\n\
                 config = client.config({n}, {{\"user_id\": \"user-123\", \"country\": \"US\"}})"
            ),
            note: "Returns a dict: the general value with matching overrides merged in.",
        },
        Snippet {
            id: "node",
            label: "Node",
            install: "npm install optifork".into(),
            code: format!(
                "const {{ Client }} = require(\"optifork\");\n\n\
                 const client = new Client({u}, process.env.OPTIFORK_SDK_KEY);\n\
                 const config = client.config({n}, {{ userId: \"user-123\", country: \"US\" }});"
            ),
            note: "Returns an object: the general value with matching overrides merged in.",
        },
        Snippet {
            id: "go",
            label: "Go (HTTP)",
            install: String::new(),
            code: go,
            note: "Configs are not flags, so OFREP does not carry them: GET /configs/{name} with the user's attributes.",
        },
        Snippet {
            id: "java",
            label: "Java (HTTP)",
            install: String::new(),
            code: java,
            note: "Configs are not flags, so OFREP does not carry them: GET /configs/{name} with the user's attributes.",
        },
        Snippet {
            id: "curl",
            label: "curl",
            install: String::new(),
            code: format!(
                "curl \"{url}{path}\" \\\n  -H \"Authorization: Bearer $OPTIFORK_SDK_KEY\"\n\n\
                 # Exact attribute types: send the context as JSON\n\
                 curl \"{url}/configs/{name}{env_q}\" -H \"Authorization: Bearer $OPTIFORK_SDK_KEY\" \\\n  \
                 -H 'X-User-Context: {{\"user_id\": \"user-123\", \"age\": 30}}'"
            ),
            note: "Answers {\"name\", \"config_data\", \"matched_overrides\"}.",
        },
    ]
}

fn experiment_snippets(name: &str, event: &str, url: &str, env_q: &str) -> Vec<Snippet> {
    let n = q(name);
    let u = q(url);
    let e = q(event);
    let sep = if env_q.is_empty() { "?" } else { "&" };
    let path = format!("/experiments/{name}/assign{env_q}{sep}user_id=user-123&country=US");
    let (go, java) = http_get_snippets(&path, url);
    vec![
        Snippet {
            id: "rust",
            label: "Rust",
            install: "cargo add optifork-sdk".into(),
            code: format!(
                "use optifork_sdk::{{Client, Context}};\n\n\
                 let client = Client::builder({u}, std::env::var(\"OPTIFORK_SDK_KEY\")?).build()?;\n\
                 let ctx = Context::new(\"user-123\").with(\"country\", \"US\");\n\n\
                 let arm = client.assign({n}, &ctx); // records the exposure\n\
                 match arm.variant.as_str() {{\n    \"control\" => {{ /* current experience */ }}\n    other => {{ /* variant {{other}} */ }}\n}}\n\n\
                 // Later, when the user converts:\n\
                 client.track({e}, &ctx, Some(42.5));"
            ),
            note: "Exposures and events are sent in batches in the background; results are on the experiment's results page.",
        },
        Snippet {
            id: "python",
            label: "Python",
            install: "pip install optifork".into(),
            code: format!(
                "import os\nimport optifork\n\n\
                 client = optifork.Client({u}, os.environ[\"OPTIFORK_SDK_KEY\"])\n\
                 context = {{\"user_id\": \"user-123\", \"country\": \"US\"}}\n\n\
                 arm = client.assign({n}, context)\n\
                 if arm.variant == \"control\":\n    ...\n\n\
                 client.track({e}, context, 42.5)"
            ),
            note: "Exposures and events are batched in the background.",
        },
        Snippet {
            id: "node",
            label: "Node",
            install: "npm install optifork".into(),
            code: format!(
                "const {{ Client }} = require(\"optifork\");\n\n\
                 const client = new Client({u}, process.env.OPTIFORK_SDK_KEY);\n\
                 const context = {{ userId: \"user-123\", country: \"US\" }};\n\n\
                 const arm = client.assign({n}, context);\n\
                 if (arm.variant === \"control\") {{\n  // current experience\n}}\n\n\
                 client.track({e}, context, 42.5);"
            ),
            note: "Exposures and events are batched in the background.",
        },
        Snippet {
            id: "go",
            label: "Go (HTTP)",
            install: String::new(),
            code: go,
            note: "GET /experiments/{name}/assign records the exposure; send conversions to POST /sdk/v1/events.",
        },
        Snippet {
            id: "java",
            label: "Java (HTTP)",
            install: String::new(),
            code: java,
            note: "GET /experiments/{name}/assign records the exposure; send conversions to POST /sdk/v1/events.",
        },
        Snippet {
            id: "curl",
            label: "curl",
            install: String::new(),
            code: format!(
                "# Assign a user (records the exposure)\n\
                 curl \"{url}{path}\" \\\n  -H \"Authorization: Bearer $OPTIFORK_SDK_KEY\"\n\n\
                 # Track a conversion\n\
                 curl -X POST \"{url}/sdk/v1/events\" -H \"Authorization: Bearer $OPTIFORK_SDK_KEY\" \\\n  \
                 -H \"Content-Type: application/json\" \\\n  \
                 -d '{{\"events\": [{{\"event\": {e}, \"user_id\": \"user-123\", \"value\": 42.5}}]}}'"
            ),
            note: "The SDK key decides the environment.",
        },
    ]
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "guide.html")]
struct GuidePage {
    layout: Layout,
    groups: Vec<(&'static str, Vec<Choice>)>,
    target: String,
    target_kind: String,
    snippets: Vec<Snippet>,
    url: String,
    key_note: &'static str,
    edit_link: String,
}

/// GET /ui/guide?flag=… | ?config=… | ?experiment=… | ?target=kind:name
pub async fn page(ui: Ui) -> UiReply {
    let env = ui.env();
    let mut wanted: Option<(String, String)> = None;
    for k in ["flag", "config", "experiment"] {
        if let Some(n) = ui.req.query_param(k).filter(|n| !n.is_empty()) {
            wanted = Some((k.to_owned(), n.to_owned()));
        }
    }
    if let Some((k, n)) = ui.req.query_param("target").and_then(|t| t.split_once(':')) {
        wanted = Some((k.to_owned(), n.to_owned()));
    }
    let mut groups = Vec::new();
    let mut first: Option<(String, String)> = None;
    for (kind, label) in [
        (EntityKind::Flag, "Flags"),
        (EntityKind::Config, "Configs"),
        (EntityKind::Experiment, "Experiments"),
    ] {
        let records = ui.state.storage.list(kind, &env).await?;
        if first.is_none()
            && let Some(r) = records.first()
        {
            first = Some((kind.as_str().to_owned(), r.name.clone()));
        }
        let choices = records
            .iter()
            .map(|r| Choice {
                value: format!("{}:{}", kind.as_str(), r.name),
                label: r.name.clone(),
                selected: wanted
                    .as_ref()
                    .is_some_and(|(k, n)| k == kind.as_str() && *n == r.name),
            })
            .collect();
        groups.push((label, choices));
    }
    let chosen = wanted.or(first);
    let url = ui.public_url();
    let (snippets, target, target_kind, edit_link) = match &chosen {
        Some((kind, name)) => {
            let entity_kind = match kind.as_str() {
                "config" => EntityKind::Config,
                "experiment" => EntityKind::Experiment,
                _ => EntityKind::Flag,
            };
            let record = ui
                .state
                .storage
                .get(entity_kind, &env, &EntityRef::Name(name.clone()))
                .await?;
            let flag_kind = match record.body["kind"].as_str() {
                Some(k) => k.to_owned(),
                None => match record.body["variants"][0]["value"] {
                    serde_json::Value::String(_) => "string".to_owned(),
                    serde_json::Value::Number(_) => "number".to_owned(),
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => "json".to_owned(),
                    _ => "boolean".to_owned(),
                },
            };
            let event = record.body["metrics"][0]["event"]
                .as_str()
                .unwrap_or("purchase")
                .to_owned();
            let t = match entity_kind {
                EntityKind::Config => Target::Config(name),
                EntityKind::Experiment => Target::Experiment(name, &event),
                _ => Target::Flag(name, &flag_kind),
            };
            (
                snippets(t, &url, &env),
                name.clone(),
                entity_kind.as_str().to_owned(),
                format!(
                    "/ui/{}/{}",
                    entity_kind.plural(),
                    super::forms::encode(name)
                ),
            )
        }
        None => (Vec::new(), String::new(), String::new(), String::new()),
    };
    let page = GuidePage {
        layout: ui.layout("Integration guide", "guide"),
        groups,
        target,
        target_kind,
        snippets,
        url,
        key_note: KEY_NOTE,
        edit_link,
    };
    ui.page(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_name_the_server_and_the_entity() {
        for t in [
            Target::Flag("new_checkout", "boolean"),
            Target::Flag("color", "string"),
            Target::Config("limits"),
            Target::Experiment("checkout_flow", "purchase"),
        ] {
            let all = snippets(t, "https://flags.example.com", "production");
            let ids: Vec<&str> = all.iter().map(|s| s.id).collect();
            assert_eq!(ids, ["rust", "python", "node", "go", "java", "curl"]);
            for s in &all {
                assert!(s.code.contains("https://flags.example.com"), "{}", s.id);
            }
        }
        let flag = snippets(
            Target::Flag("new_checkout", "boolean"),
            "http://h",
            "staging",
        );
        assert!(flag[0].code.contains("Client::builder(\"http://h\""));
        assert!(
            flag[0]
                .code
                .contains("client.is_enabled(\"new_checkout\", &ctx)")
        );
        assert!(flag[2].code.contains("client.isEnabled(\"new_checkout\""));
        assert!(flag[3].code.contains("ofrep.NewProvider"));
        assert!(
            flag[5]
                .code
                .contains("/ofrep/v1/evaluate/flags/new_checkout?environment=staging")
        );
    }
}
