import Mustache

/// The HTML of the review pages and the report (SPEC §18): plain server-rendered pages with a
/// little CSS, no script. Kept in the binary, so an installed daemon needs no files beside it.
/// Mustache escapes every value it inserts.
enum ReviewTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        // The templates are constants of this file: a parse error is a programming error.
        try! library.register(MustacheTemplate(string: head), named: "head")
        try! library.register(MustacheTemplate(string: reviewerPage), named: "reviewer")
        try! library.register(MustacheTemplate(string: refusalPage), named: "refusal")
        try! library.register(MustacheTemplate(string: reportPage), named: "report")
        return library
    }()

    static func render(_ name: String, _ context: Any) -> String {
        library.render(context, withTemplate: name) ?? ""
    }

    /// The document's start, to `<body>`: every context has a `pageTitle`.
    static let head = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{pageTitle}} — Tether</title>
        <style>
        :root { color-scheme: light; --ink: #1d2330; --muted: #596275; --line: #d5d9e2; --accent: #1f5fbf;
          --keep: #1e7a46; --revoke: #b3261e; --bg: #f6f7f9; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
          background: var(--bg); }
        header, main, footer { max-width: 60rem; margin: 0 auto; padding: 1rem 1.25rem; }
        header { padding-top: 1.5rem; }
        .brand { margin: 0; font-size: .85rem; letter-spacing: .06em; text-transform: uppercase; color: var(--muted); }
        h1 { margin: .25rem 0 .5rem; font-size: 1.6rem; }
        h2 { margin: 0 0 .5rem; font-size: 1.15rem; }
        .summary { color: var(--muted); margin: 0; }
        .item, .panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem;
          margin: 0 0 1rem; }
        table { border-collapse: collapse; width: 100%; margin: .25rem 0 .75rem; font-size: .95rem; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); font-size: .85rem; }
        code { font-size: .9em; }
        .recommendation { margin: .25rem 0 .75rem; }
        .decided { margin: .25rem 0 .75rem; padding: .5rem .75rem; border-radius: 6px; background: #eef3fb; }
        .decided[data-decision="keep"] { border-left: 4px solid var(--keep); }
        .decided[data-decision="revoke"] { border-left: 4px solid var(--revoke); }
        .gone { color: var(--muted); font-style: italic; }
        fieldset { border: 0; padding: 0; margin: 0 0 .5rem; display: flex; gap: 1.5rem; flex-wrap: wrap; }
        legend { font-weight: 600; margin-bottom: .35rem; padding: 0; }
        label { cursor: pointer; }
        textarea { width: 100%; font: inherit; padding: .4rem; border: 1px solid var(--line); border-radius: 6px; }
        button { font: inherit; margin-top: .5rem; padding: .45rem 1rem; border: 0; border-radius: 6px;
          background: var(--accent); color: #fff; cursor: pointer; }
        :focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
        .notice { padding: .6rem .9rem; border-radius: 6px; margin: 0 0 1rem; }
        .notice.ok { background: #e6f4ea; }
        .notice.error { background: #fce8e6; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        .chart text { font: 12px system-ui, sans-serif; fill: var(--ink); }
        .legend span { display: inline-block; margin-right: 1rem; }
        .swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; vertical-align: -1px; margin-right: .3rem; }
        footer { color: var(--muted); font-size: .85rem; }
        </style>
        </head>
        """

    static let reviewerPage = """
        {{> head}}
        <body>
        <header>
        <p class="brand">Tether access review</p>
        <h1>{{name}}</h1>
        <p class="summary">For <strong>{{reviewerLabel}}</strong>. Due {{due}}. {{undecided}} of {{total}} items undecided.
        Access nobody answers for is <strong>{{ifNoAnswerText}}</strong> at the due date.</p>
        </header>
        <main>
        {{#notice}}<p class="notice ok" role="status">{{.}}</p>{{/notice}}
        {{#error}}<p class="notice error" role="alert">{{.}}</p>{{/error}}
        {{#items}}
        <section class="item" id="item-{{number}}" aria-labelledby="item-{{number}}-title">
        <h2 id="item-{{number}}-title">{{subjectLabel}} through {{agent}}</h2>
        <table>
        <caption class="visually-hidden">What {{agent}} may do for {{subject}}</caption>
        <thead><tr><th scope="col">Scope</th><th scope="col">Resource</th><th scope="col">Given by</th><th scope="col">Last used</th></tr></thead>
        <tbody>
        {{#grants}}<tr><td><code>{{scope}}</code></td><td><code>{{resource}}</code></td><td>{{policy}}</td><td>{{lastUsed}}</td></tr>
        {{/grants}}
        </tbody>
        </table>
        <p class="recommendation">Recommendation: <strong>{{recommendation}}</strong> ({{recommendationReason}}).</p>
        {{#decision}}<p class="decided" data-decision="{{verdict}}">Decided: <strong>{{verdict}}</strong> by {{reviewer}} at {{time}}{{#note}}. Note: “{{.}}”{{/note}}</p>{{/decision}}
        {{#gone}}<p class="gone">Closed: this access was already removed; nothing to decide.</p>{{/gone}}
        {{#open}}
        <form method="post" action="{{action}}#item-{{number}}">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="item" value="{{number}}">
        <fieldset>
        <legend>Should {{subjectLabel}} keep this access through {{agent}}?</legend>
        <label><input type="radio" name="decision" value="keep" required{{#keepChecked}} checked{{/keepChecked}}> Keep</label>
        <label><input type="radio" name="decision" value="revoke"{{#revokeChecked}} checked{{/revokeChecked}}> Revoke</label>
        </fieldset>
        <label for="note-{{number}}">Note (optional)</label>
        <textarea id="note-{{number}}" name="note" maxlength="1000" rows="2">{{noteText}}</textarea>
        <button type="submit">{{#decision}}Change{{/decision}}{{^decision}}Save{{/decision}} decision on {{subject}} through {{agent}}</button>
        </form>
        {{/open}}
        </section>
        {{/items}}
        {{^items}}<p class="panel">You have no items in this review.</p>{{/items}}
        </main>
        <footer><p>Decisions can change until the due date; each is recorded in Tether's audit log.</p></footer>
        </body>
        </html>
        """

    static let refusalPage = """
        {{> head}}
        <body>
        <header><p class="brand">Tether access review</p><h1>{{title}}</h1></header>
        <main><p class="panel" role="alert">{{message}}</p></main>
        </body>
        </html>
        """

    static let reportPage = """
        {{> head}}
        <body>
        <header>
        <p class="brand">Tether access review report</p>
        <h1>{{campaign.name}}</h1>
        <p class="summary">Campaign <code>{{campaign.id}}</code> over <code>{{campaign.scope}}</code>, reviewed by
        {{campaign.reviewer}}s. Started {{campaign.createdAt}} by {{campaign.createdBy}} (audit seq {{campaign.startedSeq}});
        due {{campaign.due}}; no answer means {{campaign.ifNoAnswer}}. {{#campaign.closedAt}}Closed {{.}} by
        {{campaign.closedBy}} (audit seq {{campaign.closedSeq}}).{{/campaign.closedAt}}{{^campaign.closedAt}}Status: {{campaign.status}}.{{/campaign.closedAt}}</p>
        </header>
        <main>
        <section class="panel" aria-labelledby="summary-title">
        <h2 id="summary-title">Summary by agent</h2>
        {{{chart}}}
        <p class="legend" aria-hidden="true">{{#legend}}<span><span class="swatch" style="background: {{color}}"></span>{{label}}</span>{{/legend}}</p>
        <table>
        <thead><tr><th scope="col">Agent</th><th scope="col">Kept</th><th scope="col">Revoked</th><th scope="col">Kept by default</th>
        <th scope="col">Revoked by default</th><th scope="col">Gone</th><th scope="col">Open</th></tr></thead>
        <tbody>
        {{#summary}}<tr><th scope="row">{{agent}}</th><td>{{kept}}</td><td>{{revoked}}</td><td>{{keptByDefault}}</td><td>{{revokedByDefault}}</td><td>{{gone}}</td><td>{{open}}</td></tr>
        {{/summary}}
        </tbody>
        </table>
        </section>
        <section class="panel" aria-labelledby="items-title">
        <h2 id="items-title">Items</h2>
        <table>
        <thead><tr><th scope="col">#</th><th scope="col">Person</th><th scope="col">Agent</th><th scope="col">Grants</th>
        <th scope="col">Recommended</th><th scope="col">Decision</th><th scope="col">Decision seq</th><th scope="col">Outcome</th>
        <th scope="col">Applied seqs</th></tr></thead>
        <tbody>
        {{#items}}<tr><td>{{number}}</td><td>{{subject}}</td><td>{{agent}}</td><td>{{#grants}}<code>{{scope}} {{resource}}</code><br>{{/grants}}</td>
        <td>{{recommendation}}</td><td>{{#decision}}{{decision}} by {{decidedBy}} at {{decidedAt}}{{#note}}: “{{.}}”{{/note}}{{/decision}}{{^decision}}none{{/decision}}</td>
        <td>{{decisionSeq}}</td><td>{{outcome}}</td><td>{{appliedSeqText}}</td></tr>
        {{/items}}
        </tbody>
        </table>
        </section>
        </main>
        <footer><p>Every seq is a record of <code>tether audit</code>; <code>tether audit verify</code> checks the chain they belong to.</p></footer>
        </body>
        </html>
        """
}
