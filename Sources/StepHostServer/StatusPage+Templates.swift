/// The status page's templates and its one script. Kept in the binary: an installed host needs no files beside it.
extension StatusPage {
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}}</title>
        <style>
        body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
        header { background: #1d2330; color: #fff; padding: 10px 24px; display: flex; gap: 16px; align-items: baseline; }
        header a { color: #fff; text-decoration: none; font-weight: 600; }
        header small { color: #aab; }
        main { padding: 16px 24px; max-width: 1280px; }
        h2 { font-size: 16px; margin: 24px 0 8px; }
        table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
        th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #e4e6eb; vertical-align: top; }
        th { background: #eef0f4; font-weight: 600; font-size: 12px; text-transform: uppercase; color: #556; }
        code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
        .state { padding: 1px 8px; border-radius: 9px; font-size: 12px; font-weight: 600; white-space: nowrap; }
        .succeeded, .done { background: #dcf5e3; color: #126b2f; }
        .failed, .fail, .fault { background: #fde2e1; color: #a11a14; }
        .in_progress, .pending, .retry { background: #fff1cc; color: #7a5300; }
        .filters a { margin-right: 10px; }
        .filters a.current { font-weight: 700; text-decoration: none; color: #1d2330; }
        .bar { height: 10px; background: #4a78d0; border-radius: 2px; min-width: 2px; }
        .bar.fail, .bar.fault { background: #d0473f; } .bar.retry { background: #d9a520; }
        .error { background: #fde2e1; padding: 8px 12px; border-left: 4px solid #a11a14; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; background: #fff; padding: 10px 14px; }
        dt { color: #556; } dd { margin: 0; }
        .muted { color: #778; }
        </style>
        </head>
        """

    static let header = """
        <body data-running="{{#running}}true{{/running}}{{^running}}false{{/running}}" data-refreshes="0"{{#operationVersion}} data-version="{{operationVersion}}"{{/operationVersion}}>
        <header><a href="/">stephost</a><small>{{version}}</small></header>
        <main id="content">
        """

    static let footer = """
        <p class="muted" id="generated">generated {{generated}}{{#running}} · refreshing while an operation runs{{/running}}</p>
        </main>
        <script src="/ui/status.js"></script>
        </body>
        </html>
        """

    static let index = """
        {{> layout}}
        {{> header}}
        <h2>Pipeline</h2>
        <p class="muted">Plugins from <code>{{pluginsDir}}</code>, in the order their steps run (create_runtime is weight 100).</p>
        <table id="pipeline">
        <tr><th>#</th><th>Weight</th><th>Step</th><th>Plugin</th><th>Version</th><th>SHA-256</th><th>Isolation</th><th>Health</th></tr>
        {{#steps}}
        <tr class="step" data-step="{{name}}"><td>{{position}}</td><td>{{weight}}</td><td><code>{{name}}</code></td><td>{{plugin}}</td><td>{{version}}</td><td class="mono" title="{{sha_full}}">{{sha}}</td><td>{{isolation}}</td><td>{{#healthy}}<span class="state succeeded">ok</span>{{/healthy}}{{^healthy}}<span class="state failed">{{health}}</span>{{/healthy}}</td></tr>
        {{/steps}}
        </table>
        {{#hasBroken}}<h2>Broken plugins</h2><ul>{{#broken}}<li><code>{{file}}</code>: {{error}}</li>{{/broken}}</ul>{{/hasBroken}}
        {{#hasDisabled}}<h2>Disabled plugins</h2><ul>{{#disabled}}<li><code>{{file}}</code> ({{plugin}})</li>{{/disabled}}</ul>{{/hasDisabled}}
        <h2>Operations</h2>
        <p class="filters">State: {{#filters}}<a href="{{href}}"{{#current}} class="current"{{/current}}>{{label}}</a>{{/filters}}</p>
        <table id="operations" data-filter="{{filter}}">
        <tr><th>Operation</th><th>Instance</th><th>State</th><th>Age</th><th>Passes</th><th>Description</th></tr>
        {{#operations}}
        <tr class="operation" data-id="{{id}}" data-state="{{state}}"><td><a class="mono" href="/ui/operations/{{id}}">{{short}}</a></td><td class="mono">{{instance}}</td><td><span class="state {{state}}">{{state}}</span></td><td>{{age}}</td><td>{{passes}}</td><td>{{description}}</td></tr>
        {{/operations}}
        </table>
        {{^hasOperations}}<p class="muted">No operations{{#filterState}} in state {{filterState}}{{/filterState}}.</p>{{/hasOperations}}
        {{> footer}}
        """

    static let operation = """
        {{> layout}}
        {{> header}}
        <h2>Operation <code>{{id}}</code> <span class="state {{state}}" id="state">{{state}}</span></h2>
        <dl>
        <dt>instance</dt><dd class="mono">{{instance}}</dd>
        <dt>description</dt><dd id="description">{{description}}</dd>
        <dt>created</dt><dd>{{created}} ({{age}} ago)</dd>
        <dt>updated</dt><dd>{{updated}}</dd>
        <dt>passes</dt><dd id="passes">{{passes}}</dd>
        <dt>retries</dt><dd id="retries">{{retries}}</dd>
        <dt>next pass</dt><dd>{{nextPass}}</dd>
        {{#runningStep}}<dt>running now</dt><dd id="running-step">{{runningStep}}</dd>{{/runningStep}}
        <dt>runtime</dt><dd class="mono">{{runtime}}</dd>
        </dl>
        {{#lastError}}<h2>Last error</h2><p class="error" id="last-error">step <code>{{step}}</code> ({{plugin}}): {{message}}</p>{{/lastError}}
        <h2>Timeline</h2>
        {{#hasDropped}}<p class="muted">{{dropped}} step runs of middle passes are not kept.</p>{{/hasDropped}}
        {{^hasTimeline}}<p class="muted">No step has run yet.</p>{{/hasTimeline}}
        {{#timeline}}
        <h3>Pass {{pass}} <small class="muted">started {{started}}, {{total}} ms</small></h3>
        <table class="timeline" data-pass="{{pass}}">
        <tr><th>#</th><th>Step</th><th>Plugin</th><th>Outcome</th><th>ms</th><th style="width:30%">Time</th><th>Message</th></tr>
        {{#steps}}
        <tr class="run" data-step="{{step}}" data-outcome="{{outcome}}"><td>{{position}}</td><td><code>{{step}}</code></td><td>{{plugin}}</td><td><span class="state {{outcome}}">{{outcome}}</span></td><td>{{ms}}</td><td><div class="bar {{outcome}}" style="width:{{width}}%"></div></td><td>{{message}}</td></tr>
        {{/steps}}
        </table>
        {{/timeline}}
        {{> footer}}
        """

    /// Reloads `#content` while `data-running` is true and counts each reload in `data-refreshes` (the browser test
    /// reads it): an operation's page asks for the version after the one it shows (`?after=`, which the server
    /// holds until the operation changes), the index asks again every 2 seconds. Stops once nothing on the page runs.
    static let script = """
        "use strict";
        (function () {
          function schedule(delay) {
            if (document.body.dataset.running !== "true") return;
            setTimeout(refresh, delay);
          }
          function address() {
            var version = document.body.dataset.version;
            if (!version) return window.location.href;
            var url = new URL(window.location.href);
            url.searchParams.set("after", version);
            return url.toString();
          }
          function refresh() {
            fetch(address(), { credentials: "same-origin", cache: "no-store" })
              .then(function (answer) { if (!answer.ok) throw new Error(answer.status); return answer.text(); })
              .then(function (text) {
                var page = new DOMParser().parseFromString(text, "text/html");
                var content = page.getElementById("content");
                if (content) document.getElementById("content").innerHTML = content.innerHTML;
                document.body.dataset.running = page.body.dataset.running;
                if (page.body.dataset.version) document.body.dataset.version = page.body.dataset.version;
                document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || "0") + 1);
                schedule(document.body.dataset.version ? 0 : 2000);
              })
              .catch(function () { setTimeout(refresh, 5000); });
          }
          schedule(document.body.dataset.version ? 0 : 2000);
        })();
        """
}
