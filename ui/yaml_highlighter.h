// Light YAML highlighting for the Policies editor: keys, strings, numbers
// and booleans, comments. Line-based; good enough for configs.
#pragma once

#include <QRegularExpression>
#include <QSyntaxHighlighter>
#include <QTextCharFormat>

namespace spillway::ui {

class YamlHighlighter final : public QSyntaxHighlighter {
  Q_OBJECT
 public:
  explicit YamlHighlighter(QTextDocument* document);

 protected:
  void highlightBlock(const QString& text) override;

 private:
  struct Rule {
    QRegularExpression pattern;
    QTextCharFormat format;
    int group = 0;
  };
  std::vector<Rule> rules_;
};

}  // namespace spillway::ui
