// The executable is only an entry point; everything lives in StreamlineCLI so tests can reach it.
import StreamlineCLI

@main enum Entry {
    static func main() async {
        await Streamline.main() as Void
    }
}
