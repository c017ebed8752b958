import Testing

@Test func placeholderTrainingTests() {}
