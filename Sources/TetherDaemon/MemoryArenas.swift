import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How many malloc arenas the daemon's threads share.
///
/// glibc gives threads that allocate at once arenas of their own, up to eight per core. A
/// daemon that reads a whole directory on some threads and answers checks on others then keeps
/// memory freed in one arena that another cannot reuse: at 100,000 people, the resident set
/// after a first syncrepl refresh was a third above what was allocated. Two threads at most
/// run at once per two cores, so one arena per core keeps contention where it was and the
/// freed memory where it can be used again. `MALLOC_ARENA_MAX` in the environment wins.
enum MemoryArenas {
    static func limit(environment: [String: String]) {
        #if canImport(Glibc)
        guard environment["MALLOC_ARENA_MAX"] == nil else { return }
        // mallopt and M_ARENA_MAX (-8) are glibc's (malloc.h, which the Glibc module does not export).
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let arenaMax: Int32 = -8
        _ = unsafeBitCast(symbol, to: Mallopt.self)(arenaMax, Int32(max(2, ProcessInfo.processInfo.activeProcessorCount)))
        #endif
    }
}
