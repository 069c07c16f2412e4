import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out; IMF-fixdate, RFC 850 and asctime in.
enum HTTPDate {
    /// `seconds` since the epoch as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes, so
    /// a year outside 0-9999 (which the format cannot write) is clamped into it.
    static func format(_ seconds: Int64) -> String {
        String(unsafeUninitializedCapacity: Self.length) { Self.fill(seconds, into: $0) }
    }

    private static let dayTable: StaticString = "SunMonTueWedThuFriSat"
    private static let monthTable: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
    private static let gmtTable: StaticString = "GMT"

    /// The month (0: January) named `name` as dates write it (`Nov`), from the table the dates are written with.
    private static func month(named name: Substring) -> Int? {
        guard name.utf8.count == 3 else { return nil }
        return (0..<12).first { index in
            name.utf8.elementsEqual(UnsafeBufferPointer(start: Self.monthTable.utf8Start + index * 3, count: 3))
        }
    }

    /// The length of an IMF-fixdate.
    static let length = 29

    /// Writes the 29 bytes of `seconds` as an IMF-fixdate at the start of `out`; returns 29.
    static func fill(_ seconds: Int64, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        let (year, month, day) = Self.civil(fromDays: days)
        let weekday = Int(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday
        var index = 0
        // Names from fixed tables of three-letter entries: the String tables' UTF-8 walks cost more than the
        // rest of the date (Last-Modified is written per response).
        func put(_ table: StaticString, entry: Int) {
            let names = table.utf8Start
            for offset in 0..<3 { out[index + offset] = names[entry * 3 + offset] }
            index += 3
        }
        func put(_ byte: UInt8) {
            out[index] = byte
            index += 1
        }
        func digits(_ value: Int64, _ count: Int) {
            var value = value
            for position in stride(from: count - 1, through: 0, by: -1) {
                out[index + position] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            index += count
        }
        put(Self.dayTable, entry: weekday)
        put(UInt8(ascii: ","))
        put(UInt8(ascii: " "))
        digits(day, 2)
        put(UInt8(ascii: " "))
        put(Self.monthTable, entry: Int(month) - 1)
        put(UInt8(ascii: " "))
        digits(min(max(year, 0), 9999), 4)
        put(UInt8(ascii: " "))
        digits(secondOfDay / 3600, 2)
        put(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2)
        put(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        put(UInt8(ascii: " "))
        put(Self.gmtTable, entry: 0)
        return index
    }

    /// Seconds since the epoch of an HTTP date in any of the three formats; nil if it is not one.
    static func parse(_ text: String) -> Int64? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" })
        // fixdate: Sun 06 Nov 1994 08:49:37 GMT; rfc850: Sunday 06 Nov 94 08:49:37 GMT;
        // asctime: Sun Nov 6 08:49:37 1994
        let day: Substring
        let month: Substring
        var year: Substring
        let time: Substring
        if words.count == 6, words[5] == "GMT" {
            (day, month, year, time) = (words[1], words[2], words[3], words[4])
            if year.count == 2, let short = Int(year) {
                // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
                year = Substring(String(short < 70 ? 2000 + short : 1900 + short))
            }
        } else if words.count == 5 {
            (month, day, time, year) = (words[1], words[2], words[3], words[4])
        } else {
            return nil
        }
        guard let monthIndex = Self.month(named: month),
            let dayNumber = Int64(day), (1...31).contains(dayNumber), year.count == 4, let yearNumber = Int64(year)
        else { return nil }
        let clock = time.split(separator: ":")
        guard clock.count == 3, clock.allSatisfy({ $0.count == 2 }), let hour = Int64(clock[0]),
            let minute = Int64(clock[1]), let second = Int64(clock[2]), hour < 24, minute < 60, second < 61
        else { return nil }
        let days = Self.days(fromCivil: yearNumber, Int64(monthIndex + 1), dayNumber)
        return days * 86400 + hour * 3600 + minute * 60 + second
    }

    // Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }

    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let dayOfEra = z - era * 146097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension HTTPDate {
    /// The current time as an IMF-fixdate for the `Date` header, formatted once per second per thread.
    static func now() -> String {
        let seconds = Int64(time(nil))
        let cache: NowCache
        if let existing = Self.nowCache.currentValue {
            cache = existing
        } else {
            cache = NowCache()
            Self.nowCache.currentValue = cache
        }
        if cache.second != seconds {
            cache.second = seconds
            cache.text = Self.format(seconds)
        }
        return cache.text
    }

    /// `@unchecked Sendable`: each instance lives in one thread's slot and is touched by that thread only.
    private final class NowCache: @unchecked Sendable {
        var second: Int64 = -1
        var text = ""
    }

    private static let nowCache = ThreadSpecificVariable<NowCache>()
}
