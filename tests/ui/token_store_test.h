// Fleet tokens: in a 0600 file when there is no keyring, and in a real
// Secret Service keyring (gnome-keyring-daemon in a private D-Bus session,
// started by tests/ui/with_keyring.sh) when there is one.
#pragma once

#include <QObject>

class TokenStoreTest : public QObject {
  Q_OBJECT
 private slots:
  void fileStoreIsPrivateToTheUser();
  void withoutAKeyringTokensGoToTheFile();
  // Runs under with_keyring.sh only (its own CTest entry).
  void keyringKeepsTokensOutOfTheFile();
};
