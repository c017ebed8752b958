import Testing

@Test func placeholderTensorStoreTests() {}
