/// The release this library and its command line carry (`sfumato --version`, PNG metadata readers).
public enum SfumatoVersion {
    public static let string = "0.9.0"
}
