import Logging
import PageShareServer
import ServiceLifecycle
import UnixSignals

/// The control plane beside the data plane: on SIGHUP reads the configuration again (file, environment and
/// flags) and applies what can change in place — the log level and the tokens file's contents — and names the
/// settings that need a restart; on shutdown stops the background digest computations.
struct ControlPlaneService: Service {
    let catalog: ImageCatalog
    let access: AccessPolicy
    let logger: Logger
    let logLevel: LogLevelControl
    /// The settings the daemon started with, and how to read them again.
    let settings: ServeSettings
    let reload: @Sendable () throws -> ServeSettings
    /// Told `RELOADING=1` and `READY=1` around a reload.
    let notifier: ServiceManagerNotifier

    func run() async throws {
        // Configured images that were not there at start are attached once they are; the image directory is
        // scanned again in case inotify missed something (or the directory appeared).
        let catalog = self.catalog
        let retrying = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(10))
                await catalog.retryConfigured()
                await catalog.scanImageDirectory()
            }
        }
        defer { retrying.cancel() }
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            self.notifier.reloading()
            self.reloadConfiguration()
            await catalog.retryConfigured()
            await catalog.scanImageDirectory()
            self.notifier.notify("READY=1\nSTATUS=serving")
        }
        await self.catalog.stop()
    }

    private func reloadConfiguration() {
        do {
            let fresh = try self.reload()
            if fresh.logLevel != self.logLevel.current {
                self.logLevel.current = fresh.logLevel
                self.logger.notice("log level changed", metadata: ["level": "\(fresh.logLevel)"])
            }
            var same = fresh
            same.logLevel = self.settings.logLevel
            if (try? same.yaml()) != (try? self.settings.yaml()) {
                self.logger.warning("configuration changed beyond logLevel and the tokens: restart to apply it")
            }
        } catch {
            self.logger.error("configuration not reloaded, the running one stays", metadata: ["error": "\(error)"])
        }
        guard let path = self.access.tokensPath else { return }
        do {
            try self.access.reload()
            self.logger.notice("tokens reloaded", metadata: ["file": "\(path)"])
        } catch {
            self.logger.error("tokens not reloaded, the previous ones stay", metadata: ["error": "\(error)"])
        }
    }
}
