// Reading a JSON Lines file (the binaries' results records) in tests: one
// object per non-blank line, in order. A line that is not JSON fails the
// calling test (nlohmann's parse_error propagates).
#ifndef DLSPEED_COMMON_TESTING_JSON_LINES_H_
#define DLSPEED_COMMON_TESTING_JSON_LINES_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dlspeed {

// Every record of `path`; empty when the file does not exist.
std::vector<nlohmann::json> ReadJsonLines(const std::string& path);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_TESTING_JSON_LINES_H_
