// Secret files are private from the moment they exist.
#pragma once

#include <QObject>

class FilesTest : public QObject {
  Q_OBJECT
 private slots:
  void newFileIsCreatedPrivate();
  void existingWideFileIsNarrowedBeforeWriting();
  void unwritablePathIsAnError();
};
