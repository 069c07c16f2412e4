import Logging
import PageShareServer
import ServiceLifecycle

/// The data plane as a service: listens (then `/readyz` answers 200) until the group shuts down gracefully,
/// then drains.
struct DataPlaneService: Service {
    let daemon: PageShareDaemon
    let logger: Logger
    /// Told `READY=1` once listening, `STOPPING=1` on shutdown, and `WATCHDOG=1` while the event loops answer.
    let notifier: ServiceManagerNotifier

    func run() async throws {
        let server = self.daemon.server
        try await self.daemon.start()
        for address in server.boundAddresses {
            self.logger.notice(
                "serving",
                metadata: [
                    "address": "\(address)", "version": "\(PageShareCommand.version)", "commit": "\(BuildInfo.commit)",
                ])
        }
        self.notifier.notify("READY=1\nSTATUS=serving")
        let watchdog = self.notifier.watchdogInterval.map { interval in
            Task { [notifier] in
                // Every half interval, once every event loop has run a task: a stuck loop stops the pings
                // and the service manager restarts the daemon.
                while !Task.isCancelled {
                    await server.eventLoopsAnswer()
                    notifier.notify("WATCHDOG=1")
                    try? await Task.sleep(for: interval / 2)
                }
            }
        }
        defer { watchdog?.cancel() }
        try? await gracefulShutdown()
        self.notifier.notify("STOPPING=1\nSTATUS=draining connections")
        self.logger.notice("shutting down: draining connections")
        await server.shutdown()
    }
}
