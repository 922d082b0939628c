import Logging
import NIOCore
import NIOPosix
import TetherCore

/// `http.realtimePriority`: the daemon's event loops in Linux's round-robin real-time class.
///
/// A check is answered on the event loop its connection belongs to, in tens of microseconds.
/// What makes one slow is the wait for a core: on a machine whose cores are busy (the daemon's
/// own writers and reconciliation, a gateway or other services beside it), a thread of the
/// normal class that wakes for a request may wait behind another thread's time slice, a
/// millisecond or more. A real-time loop takes a core as soon as its request arrives. The
/// loops are the process's shared NIO loops: they also carry the PostgreSQL connections and
/// the calls to targets, which hand their work to other threads at once as checks do.
enum RealtimeEventLoops {
    /// Asks for the class on every loop of `group`; logs what came of it. A refusal leaves the
    /// loops in the normal class: the daemon serves as without the setting.
    static func raise(_ group: MultiThreadedEventLoopGroup = .singleton, priority: Int32, logger: Logger) async {
        var refusals: [String] = []
        var loops = 0
        for loop in group.makeIterator() {
            loops += 1
            do {
                if let refusal = try await loop.submit({ ThreadScheduling.roundRobin(priority: priority) }).get() {
                    refusals.append(refusal)
                }
            } catch {
                refusals.append("\(error)")
            }
        }
        if let refusal = refusals.first {
            logger.warning(
                "http.realtimePriority was refused, so the event loops run in the normal scheduling class; allow it with LimitRTPRIO=\(priority) and RestrictRealtime=no in the unit, or remove the setting",
                metadata: ["priority": "\(priority)", "loops": "\(loops)", "refused": "\(refusals.count)", "reason": "\(refusal)"])
        } else {
            logger.info(
                "the event loops answer in the real-time scheduling class (SCHED_RR), ahead of every thread of the normal class",
                metadata: ["priority": "\(priority)", "loops": "\(loops)"])
        }
    }
}
