// Where the console keeps the tokens of remote engines: the OS keyring
// (the Secret Service — GNOME Keyring, KWallet — through QtKeychain) when
// one answers, else a JSON file that only the user can read (0600). A token
// saved to the keyring is removed from the file, so it lives in one place.
// Calls block (a local D-Bus round trip, at most 5 s); once a keyring is
// found missing, the process stops asking it. The fleet page makes few calls.
#pragma once

#include <QString>

namespace spillway::ui {

class TokenStore {
 public:
  enum class Where { kKeyring, kFile };

  // `file` is the fallback file; `use_keyring` false skips the keyring.
  explicit TokenStore(QString file, bool use_keyring = true);

  Where save(const QString& name, const QString& token);
  QString load(const QString& name) const;  // "" if none
  void remove(const QString& name);
  const QString& file() const { return file_; }

 private:
  QString file_;
  bool use_keyring_;
};

}  // namespace spillway::ui
