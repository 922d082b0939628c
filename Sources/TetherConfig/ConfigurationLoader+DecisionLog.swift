import Foundation
import Yams

extension ConfigurationLoader {
    /// Where the decision log is (`check.log.path`, else beside the store), read leniently like
    /// ``locations(path:)``: `tether decisions` works while the file on disk is broken.
    public static func decisionLogPath(path: String) -> String {
        let store = locations(path: path).store
        let absolute = ConfigurationReader.absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        let folder = ConfigurationReader.absolutePath("..", relativeTo: absolute)
        guard let text = try? String(contentsOfFile: absolute, encoding: .utf8),
            let root = (try? Yams.load(yaml: text)) as? [String: Any],
            let log = (root["check"] as? [String: Any])?["log"] as? [String: Any], let logPath = log["path"] as? String
        else { return DecisionLogConfiguration.defaultPath(store: store) }
        return ConfigurationReader.absolutePath(logPath, relativeTo: folder)
    }
}
