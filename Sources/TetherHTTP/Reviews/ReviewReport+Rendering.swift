import Foundation
import TetherEngine

/// The report's formats: `html` for people, `json` and `csv` for tools.
extension ReviewReport {
    public enum Format: String, Sendable, CaseIterable {
        case html, json, csv

        /// The media type of the format.
        public var contentType: String {
            switch self {
            case .html: "text/html; charset=utf-8"
            case .json: "application/json"
            case .csv: "text/csv; charset=utf-8"
            }
        }
    }

    /// The report in `format`.
    public func rendered(_ format: Format) -> String {
        switch format {
        case .html: html()
        case .json: json()
        case .csv: csv()
        }
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // A report is plain strings and numbers: encoding it cannot fail.
        return String(decoding: try! encoder.encode(self), as: UTF8.self) + "\n"
    }

    /// One line per item (RFC 4180), in item order; seqs joined by spaces.
    func csv() -> String {
        var lines = [
            [
                "campaign", "item", "subject", "agent", "reviewers", "grants", "recommendation", "decision", "decided_by",
                "decided_at", "decision_seq", "outcome", "applied_seqs", "note",
            ]
        ]
        for item in items {
            lines.append([
                campaign.id, String(item.number), item.subject, item.agent, item.reviewers.joined(separator: " "),
                item.grants.map { "\($0.scope) \($0.resource)" }.joined(separator: "; "), item.recommendation,
                item.decision ?? "", item.decidedBy ?? "", item.decidedAt ?? "", item.decisionSeq.map(String.init) ?? "",
                item.outcome ?? "open", item.appliedSeqs.map(String.init).joined(separator: " "), item.note ?? "",
            ])
        }
        return lines.map { $0.map(Self.csvField).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { ",\"\r\n".contains($0) }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    func html() -> String {
        struct ItemRow {
            var number: Int
            var subject: String
            var agent: String
            var grants: [GrantLine]
            var recommendation: String
            var decision: String?
            var decidedBy: String?
            var decidedAt: String?
            var note: String?
            var decisionSeq: String
            var outcome: String
            var appliedSeqText: String
        }
        struct Page {
            var pageTitle: String
            var campaign: Campaign
            var chart: String
            var legend: [[String: String]]
            var summary: [AgentSummary]
            var items: [ItemRow]
        }
        let page = Page(
            pageTitle: "\(campaign.name): access review report", campaign: campaign, chart: chart(),
            legend: Self.series.map { ["label": $0.label, "color": $0.color] }, summary: summary,
            items: items.map {
                ItemRow(
                    number: $0.number, subject: $0.subject, agent: $0.agent, grants: $0.grants, recommendation: $0.recommendation,
                    decision: $0.decision, decidedBy: $0.decidedBy, decidedAt: $0.decidedAt, note: $0.note,
                    decisionSeq: $0.decisionSeq.map(String.init) ?? "–", outcome: $0.outcome ?? "open",
                    appliedSeqText: $0.appliedSeqs.isEmpty ? "–" : $0.appliedSeqs.map(String.init).joined(separator: ", "))
            })
        return ReviewTemplates.render("report", page)
    }

    /// The outcomes the chart stacks, in order, with their colours.
    static let series: [(label: String, color: String, count: @Sendable (AgentSummary) -> Int)] = [
        ("kept", "#1e7a46", \.kept), ("revoked", "#b3261e", \.revoked), ("kept by default", "#7fb89a", \.keptByDefault),
        ("revoked by default", "#e08a84", \.revokedByDefault), ("gone", "#9aa3b5", \.gone), ("open", "#d5d9e2", \.open),
    ]

    /// A horizontal stacked bar per agent: its items by outcome, as inline SVG with a text
    /// alternative.
    func chart() -> String {
        let rowHeight = 26
        let labelWidth = 160
        let barWidth = 420
        let largest = max(1, summary.map { s in Self.series.reduce(0) { $0 + $1.count(s) } }.max() ?? 1)
        let height = rowHeight * max(1, summary.count) + 8
        var svg = """
            <svg class="chart" role="img" aria-labelledby="chart-title" width="\(labelWidth + barWidth + 60)" height="\(height)" \
            viewBox="0 0 \(labelWidth + barWidth + 60) \(height)" xmlns="http://www.w3.org/2000/svg">
            <title id="chart-title">Items by agent and outcome</title>
            """
        for (row, agent) in summary.enumerated() {
            let y = row * rowHeight + 4
            svg += "<text x=\"0\" y=\"\(y + 16)\">\(Self.escape(agent.agent))</text>"
            var x = labelWidth
            var total = 0
            for series in Self.series {
                let count = series.count(agent)
                guard count > 0 else { continue }
                let width = max(1, count * barWidth / largest)
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(rowHeight - 8)\" fill=\"\(series.color)\">"
                svg += "<title>\(Self.escape(agent.agent)): \(count) \(series.label)</title></rect>"
                x += width
                total += count
            }
            svg += "<text x=\"\(x + 6)\" y=\"\(y + 14)\">\(total)</text>"
        }
        return svg + "</svg>"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
