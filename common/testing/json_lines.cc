#include "common/testing/json_lines.h"

#include <fstream>

namespace dlspeed {

std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) records.push_back(nlohmann::json::parse(line));
  }
  return records;
}

}  // namespace dlspeed
