// For fuzz targets whose reader takes a path: the fuzzer's bytes written to a
// file in a directory private to the process (under $TEST_TMPDIR or /tmp),
// overwritten for every input.
//
//   const std::string path = dlspeed::WriteFuzzInput("test_batch.bin", data, size);
#ifndef DLSPEED_FUZZ_FUZZ_INPUT_FILE_H_
#define DLSPEED_FUZZ_FUZZ_INPUT_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace dlspeed {

// The directory the inputs go to, created on first use.
const std::string& FuzzInputDir();

// Writes `size` bytes at `data` to FuzzInputDir()/name and returns the path.
std::string WriteFuzzInput(const std::string& name, const uint8_t* data, size_t size);

}  // namespace dlspeed

#endif  // DLSPEED_FUZZ_FUZZ_INPUT_FILE_H_
