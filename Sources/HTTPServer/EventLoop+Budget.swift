import CLinuxShims

/// The in-flight budget.
///
/// Every request byte received and not yet answered is charged to one budget shared by all connections.
/// A request whose head declares a Content-Length is charged its whole body at once when the head is complete,
/// or waits until that much is free, so a body never grows past what was admitted; bodies together stay within
/// `maxInflightBytes`. Heads, chunked bodies and pipelined bytes are charged as they arrive, from an eighth more,
/// and read only while it is free (a head is read 2 KiB at a time, so it takes little before its length is
/// known). Bodies over 256 KiB may take only three quarters of the budget together: the last quarter is for
/// bodies the size of deliveries. Waiting connections are admitted smallest declared body first, then oldest;
/// to admit one, the request that has held budget longest is cut with 503 once it has held it longer than the
/// grace.
extension EventLoop {
    /// Bodies up to this size (GitHub's deliveries: a few KB to about 100 KB) may use the whole budget; larger
    /// ones only three quarters of it, so parked large bodies can never crowd out a delivery.
    static let smallBodyBytes = 256 * 1024

    private var largeBodiesLimit: Int { configuration.maxInflightBytes - configuration.maxInflightBytes / 4 }

    /// Bodies are admitted up to the budget; heads (and bytes of unknown length) have an eighth more of their
    /// own, so a new connection's head is read, and its declared length known, even while bodies hold the rest.
    var totalLimit: Int { configuration.maxInflightBytes + configuration.maxInflightBytes / 8 }

    /// Charges a declared body in full; false, charging nothing, when bodies or the total have no room for it.
    func reserveBody(_ connection: Connection, now: UInt64) -> Bool {
        guard let (length, remaining) = connection.parser.declaredBody else { return true }
        let charge = connection.received - (length - remaining) + length  // the head, then the whole body
        let isLarge = length > Self.smallBodyBytes
        guard bodiesUsed + length <= configuration.maxInflightBytes,
            !isLarge || largeBodiesUsed + length <= largeBodiesLimit,
            budgetUsed + charge - connection.charged <= totalLimit
        else { return false }
        bodiesUsed += length
        if isLarge { largeBodiesUsed += length }
        connection.bodyReserved = length
        connection.reserved = true
        setCharge(connection, max(charge, connection.charged), now: now)
        return true
    }

    /// Sets what `connection` holds of the budget; a request starts its age when it first holds bytes.
    func setCharge(_ connection: Connection, _ bytes: Int, now: UInt64) {
        let released = bytes < connection.charged
        if connection.charged == 0, bytes > 0 { connection.chargedSince = now }
        budgetUsed += bytes - connection.charged
        connection.charged = bytes
        statistics.inflightBytes.store(budgetUsed, ordering: .relaxed)
        if released, !admitting, !budgetWaiters.isEmpty { admitWaiters(now: now) }
    }

    /// Gives the budget back once a request is answered: only bytes already read past it (pipelining) stay charged.
    func releaseRequest(_ connection: Connection, now: UInt64) {
        connection.reserved = false
        bodiesUsed -= connection.bodyReserved
        if connection.bodyReserved > Self.smallBodyBytes { largeBodiesUsed -= connection.bodyReserved }
        connection.bodyReserved = 0
        connection.received = connection.parser.bufferedByteCount
        setCharge(connection, 0, now: now)
        setCharge(connection, connection.received, now: now)
    }

    /// Cuts the request that has held budget longest, if it has held it for longer than the grace and is still
    /// being received (a request in its handler is never cut).
    ///
    /// This is what keeps deliveries from starving: GitHub sends a delivery whole, so it holds budget for
    /// milliseconds, while a client that parks a body ages past the grace and is the first to go.
    private func makeRoom(for connection: Connection, now: UInt64) -> Bool {
        let grace = configuration.budgetGrace.nanoseconds
        var victim: Connection?
        for candidate in connections.values
        where candidate !== connection && candidate.state == .reading && candidate.charged > 0
            && now - candidate.chargedSince >= grace
        {
            if victim == nil || candidate.chargedSince < victim!.chargedSince { victim = candidate }
        }
        guard let victim else { return false }
        logger.debug(
            "request cut to free the in-flight budget",
            metadata: ["held_bytes": "\(victim.charged)", "held_ms": "\((now - victim.chargedSince) / 1_000_000)"]
        )
        statistics.budgetCuts.add(1, ordering: .relaxed)
        reject(victim, now: now)
        return true
    }

    /// Stops reading `connection` until `need` bytes of budget can be given to it.
    func waitForBudget(_ connection: Connection, need: Int, now: UInt64) {
        setInterest(connection, 0)
        connection.budgetNeed = need
        if connection.waitingSince == nil {
            connection.waitingSince = now
            budgetWaiters.append(connection)
        }
        if !admitting { admitWaiters(now: now) }
    }

    /// Admits waiting connections, smallest need first, then oldest; cuts aged requests to make room for them.
    private func admitWaiters(now: UInt64) {
        admitting = true
        defer { admitting = false }
        budgetWaiters.removeAll { connections[$0.fd] !== $0 || $0.state != .reading || $0.waitingSince == nil }
        budgetWaiters.sort { ($0.budgetNeed, $0.waitingSince!) < ($1.budgetNeed, $1.waitingSince!) }
        for waiter in budgetWaiters {  // a copy: cutting a waiter removes it from the list
            guard connections[waiter.fd] === waiter, waiter.state == .reading, waiter.waitingSince != nil else {
                continue
            }
            let isBody = waiter.parser.declaredBody != nil && !waiter.reserved
            func fits() -> Bool { isBody ? reserveBody(waiter, now: now) : budgetUsed < totalLimit }
            var admitted = fits()
            while !admitted, makeRoom(for: waiter, now: now) { admitted = fits() }
            guard admitted else { break }  // a larger need cannot fit either
            waiter.waitingSince = nil
            setInterest(waiter, KAR_EPOLLIN)
        }
        budgetWaiters.removeAll { $0.waitingSince == nil }
    }

    /// Answers waiters that could not be admitted within the wait bound with 503.
    func expireWaiters(now: UInt64) {
        admitWaiters(now: now)
        let bound = configuration.budgetWait.nanoseconds
        for waiter in budgetWaiters where now - (waiter.waitingSince ?? now) >= bound {
            statistics.budgetRefusals.add(1, ordering: .relaxed)
            reject(waiter, now: now)
        }
    }

    /// Answers 503 with `Retry-After: 1` and closes, releasing the connection's request bytes at once.
    private func reject(_ connection: Connection, now: UInt64) {
        if connection.waitingSince != nil {
            connection.waitingSince = nil
            budgetWaiters.removeAll { $0 === connection }
        }
        refuse(
            connection,
            .text(503, "server busy: request bytes in flight at their limit", headers: [("Retry-After", "1")]),
            now: now
        )
        advance(connection, now: now)
    }
}
