// CheckRegister: the checks a render server's registration must pass before
// it touches the scheduler's state or the resource database, beside
// render's CheckAssignment for the other direction of the stream. A bad
// registration is refused with a message naming the field; it never reaches
// the database, where a name with a newline once stopped the schedule
// server.
#pragma once

#include "base/status.h"
#include "rpc/protocol.h"

namespace ff {

// Ok when `reg` names its render server and host (printable, bounded, no
// control characters), offers at least one slot, uses every slot and package
// name once, and its GPU names have no control characters.
Status CheckRegister(const frameflow::v1::Register& reg);

}  // namespace ff
