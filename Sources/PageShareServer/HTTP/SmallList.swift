/// A list that holds a single element inline and needs an array only from the second: a response's body is
/// nearly always one file range, and its array would be an allocation per request.
struct SmallList<Element>: RandomAccessCollection, ExpressibleByArrayLiteral {
    private var single: Element?
    /// All the elements once there are two or more (`single` is then nil).
    private var many: [Element] = []

    init() {}

    init(arrayLiteral elements: Element...) {
        for element in elements { self.append(element) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { self.single == nil ? self.many.count : 1 }

    subscript(index: Int) -> Element {
        if let single = self.single {
            precondition(index == 0, "index out of range")
            return single
        }
        return self.many[index]
    }

    mutating func append(_ element: Element) {
        if self.many.isEmpty, self.single == nil {
            self.single = element
        } else {
            if let single = self.single {
                self.many = [single]
                self.single = nil
            }
            self.many.append(element)
        }
    }
}

extension SmallList: Equatable where Element: Equatable {
    static func == (lhs: SmallList, rhs: SmallList) -> Bool { lhs.elementsEqual(rhs) }
}

extension SmallList: Sendable where Element: Sendable {}
