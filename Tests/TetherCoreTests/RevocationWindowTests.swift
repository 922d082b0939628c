import Foundation
import Testing
import TetherCore

/// The sliding window's arithmetic, on a clock the test moves.
@Suite struct RevocationWindowTests {
    let limits = SafetyLimits(maxRevocationsPerRun: 100, maxRevocationRatio: 0.2, minGrantsForRatio: 100, window: 600)

    @Test func revocationsCountUntilTheyAreOlderThanTheWindow() {
        let clock = ManualWallClock()
        var window = RevocationWindow()
        window.record(2, at: clock.now())
        clock.advance(by: 300)
        window.record(3, at: clock.now())
        window.record(0, at: clock.now())
        #expect(window.at(clock.now(), length: 600).revocations == 5)
        #expect(window.entries.count == 2, "a commit that revoked nothing is not an entry")
        clock.advance(by: 299.999)
        #expect(window.at(clock.now(), length: 600).revocations == 5)
        clock.advance(by: 0.001)
        #expect(window.at(clock.now(), length: 600).revocations == 3, "exactly a window old: it has left")
        clock.advance(by: 300)
        #expect(window.at(clock.now(), length: 600).revocations == 0)
        #expect(window.at(clock.now(), length: 600).entries.isEmpty)
        // A clock set back keeps what it recorded "later".
        clock.advance(by: -900)
        #expect(window.at(clock.now(), length: 600).revocations == 5)
    }

    @Test func aStreamOfChangesKeepsABoundedNumberOfEntriesAndNeverLeavesEarly() {
        let clock = ManualWallClock(Date(timeIntervalSince1970: 1_800_000_000))
        var window = RevocationWindow()
        // A thousand leavers, one every 100 ms, in 5-second slots of a 10-minute window.
        for step in 0..<1000 {
            window.record(10, at: clock.now() + Double(step) * 0.1, granularity: 5)
        }
        #expect(window.entries.count == 20)
        #expect(window.entries.allSatisfy { $0.revocations == 500 })
        let end = clock.now() + 99.9
        #expect(window.at(end, length: 600).revocations == 10_000)
        // Each slot carries its latest time: its revocations leave with the last of them,
        // less than a slot after the first of them would have.
        #expect(window.at(end + 600 - 95.05, length: 600).revocations == 10_000)
        #expect(window.at(end + 600 - 94.95, length: 600).revocations == 9_500)
        #expect(window.at(end + 600, length: 600).revocations == 0)
        // A time before the latest entry (a clock set back) is an entry of its own.
        window.record(1, at: clock.now() - 10_000, granularity: 5)
        #expect(window.entries.first?.revocations == 1)
    }

    @Test func theCountLimitsEveryRevocationOfTheWindowTogether() {
        var window = RevocationWindow()
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        for second in 0..<99 { window.record(1, at: now + Double(second)) }
        #expect(limits.windowExceeded(adding: 1, to: window, existingGrants: 10_000, source: .ldap) == nil)
        window.record(1, at: now + 99)
        #expect(
            limits.windowExceeded(adding: 1, to: window, existingGrants: 10_000, source: .ldap)
                == "ldap revoked 100 grants within 10m; 1 more would make 101, more than maxRevocationsPerRun 100")
        #expect(limits.windowExceeded(adding: 0, to: window, existingGrants: 10_000, source: .ldap) == nil)
    }

    /// The directory: 899 grants, 200 deletions streamed. The base of the ratio stays
    /// the grants there were before the window's revocations.
    @Test func theRatioIsMeasuredAgainstTheGrantsBeforeTheWindowRevoked() {
        let limits = SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 0.2, minGrantsForRatio: 100, window: 600)
        var window = RevocationWindow()
        var grants = 899
        var applied = 0
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        for person in 0..<200 {
            let revocations = person % 2 == 0 ? 2 : 3
            guard limits.windowExceeded(adding: revocations, to: window, existingGrants: grants, source: .ldap) == nil else { break }
            window.record(revocations, at: now + Double(person))
            grants -= revocations
            applied += revocations
        }
        // 20% of 899 is 179.8: the stream stops where one complete read would have been held.
        #expect(applied == 177)
        #expect(window.revocations + grants == 899)
        let reason = limits.windowExceeded(adding: 3, to: window, existingGrants: grants, source: .ldap)
        #expect(reason == "ldap revoked 177 grants within 10m; 3 more would make 180 of 899 (20.0%), more than maxRevocationRatio 0.2")
        // Below minGrantsForRatio the ratio does not apply, as for one plan.
        #expect(limits.windowExceeded(adding: 50, to: RevocationWindow(), existingGrants: 99, source: .hr) == nil)
    }

    @Test func windowsAndToleranceAreWrittenAsTheConfigurationWritesThem() {
        #expect(DurationText.string(600) == "10m")
        #expect(DurationText.string(3_600) == "1h")
        #expect(DurationText.string(90) == "90s")
        #expect(DurationText.string(0.5) == "500ms")
        #expect(DurationText.string(86_400 * 7) == "7d")
    }

    @Test func aWindowScopeReadsBackFromItsText() {
        #expect(PlanScope("window:ldap") == .window(.ldap))
        #expect(PlanScope.window(.hr).description == "window:hr")
        #expect(PlanScope("window:nonsense") == nil)
    }

    @Test func aCombinedPlanKeepsEachChangeOnceInAPlansOrder() {
        let grant = { (subject: String) in
            JustifiedGrant(
                grant: Grant(subject: subject, agent: "a", scope: "s", resource: "r"),
                lineage: Lineage(policy: "p", policySet: "ps", facts: [], versions: [:], events: [:]))
        }
        let first = Plan(scope: .identity("i1"), steps: [.revoke(grant("alice"), reason: "left"), .grant(grant("carol"), reason: "p")])
        let second = Plan(scope: .identity("i2"), steps: [.revoke(grant("bob"), reason: "left"), .revoke(grant("alice"), reason: "again")])
        let combined = Plan.combining([first, second], scope: .window(.ldap))
        #expect(combined.transcript == [
            "revoke alice a s r (left)", "revoke bob a s r (left)", "grant carol a s r [p]",
        ])
        #expect(combined.scope == .window(.ldap))
    }
}
