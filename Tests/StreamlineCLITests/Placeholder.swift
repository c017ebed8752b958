import Testing

@Test func placeholderStreamlineCLITests() {}
