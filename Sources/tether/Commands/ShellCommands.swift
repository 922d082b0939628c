import ArgumentParser

/// `tether completions bash|zsh|fish`: the argument parser's completion script for the whole
/// command tree, so completions always name the commands and options this binary has.
struct Completions: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the shell completion script for bash, zsh or fish.",
        discussion: """
            The Debian package installs them; by hand: `tether completions bash > /etc/bash_completion.d/tether`, \
            `tether completions zsh > /usr/local/share/zsh/site-functions/_tether`, \
            `tether completions fish > ~/.config/fish/completions/tether.fish`.
            """)

    /// The shells the argument parser writes scripts for.
    enum Shell: String, CaseIterable, ExpressibleByArgument {
        case bash, zsh, fish
    }

    @Argument(help: "The shell: bash, zsh or fish.") var shell: Shell

    func run() {
        // Every case is a shell CompletionShell knows.
        print(Tether.completionScript(for: CompletionShell(rawValue: shell.rawValue)!), terminator: "")
    }
}
