#include "files_test.h"

#include <QtTest>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/files.h"

using spillway::common::writePrivateFile;

namespace {
mode_t modeOf(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 0777;
}
std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

void FilesTest::newFileIsCreatedPrivate() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("token").toStdString();
  // Even with a permissive umask the file is never created wider than asked
  // (open with O_CREAT and the mode; before, ofstream created it 0666 & ~umask
  // and chmod narrowed it only after the secret was written).
  const mode_t old = ::umask(0);
  auto st = writePrivateFile(path, "secret\n");
  ::umask(old);
  QVERIFY(st.ok());
  QCOMPARE(modeOf(path), mode_t(0600));
  QCOMPARE(read(path), std::string("secret\n"));
}

void FilesTest::existingWideFileIsNarrowedBeforeWriting() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("key.pem").toStdString();
  { std::ofstream(path) << "old contents that are longer"; }
  ::chmod(path.c_str(), 0644);
  QVERIFY(writePrivateFile(path, "new").ok());
  QCOMPARE(modeOf(path), mode_t(0600));
  QCOMPARE(read(path), std::string("new"));
}

void FilesTest::unwritablePathIsAnError() {
  QTemporaryDir dir;
  auto st = writePrivateFile(dir.filePath("no/such/dir/file").toStdString(), "x");
  QCOMPARE(st.code(), absl::StatusCode::kUnavailable);
  QVERIFY(std::string(st.message()).find("cannot write") == 0);
}

QTEST_APPLESS_MAIN(FilesTest)
