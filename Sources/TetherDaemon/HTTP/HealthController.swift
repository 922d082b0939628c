import Foundation
import Hummingbird
import Prometheus
import TetherCore
import TetherEngine
import TetherStore

/// `/healthz`, `/readyz` and `/metrics` on the public listener.
struct HealthController<Context: RequestContext>: Sendable {
    let state: DaemonState
    let metrics: DaemonMetrics

    func addRoutes(to router: Router<Context>) {
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { _, _ in
            let reasons = await state.notReadyReasons()
            let body = reasons.isEmpty ? "ready\n" : reasons.joined(separator: "\n") + "\n"
            return Response(
                status: reasons.isEmpty ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ in
            let text = try await metrics.render()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}
