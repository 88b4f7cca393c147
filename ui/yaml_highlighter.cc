#include "ui/yaml_highlighter.h"

#include <QColor>

namespace spillway::ui {

YamlHighlighter::YamlHighlighter(QTextDocument* document) : QSyntaxHighlighter(document) {
  auto format = [](const QColor& color, bool bold = false) {
    QTextCharFormat f;
    f.setForeground(color);
    if (bold) f.setFontWeight(QFont::Bold);
    return f;
  };
  // Later rules win where they overlap: keys after values, comments last.
  rules_.push_back({QRegularExpression(R"(\b-?\d+(\.\d+)?\b)"), format(QColor(0x09, 0x86, 0x58))});
  rules_.push_back({QRegularExpression(R"(\b(true|false|null|yes|no)\b)"), format(QColor(0x00, 0x5c, 0xc5))});
  rules_.push_back({QRegularExpression(R"("([^"\\]|\\.)*"|'[^']*')"), format(QColor(0xa3, 0x15, 0x15))});
  rules_.push_back({QRegularExpression(R"(^\s*(-\s+)?("?[A-Za-z_][\w-]*"?)\s*:)"), format(QColor(0x6f, 0x42, 0xc1), true), 2});
  rules_.push_back({QRegularExpression(R"((^|\s)#.*$)"), format(QColor(0x6a, 0x73, 0x7d))});
}

void YamlHighlighter::highlightBlock(const QString& text) {
  for (const auto& rule : rules_) {
    auto it = rule.pattern.globalMatch(text);
    while (it.hasNext()) {
      auto m = it.next();
      setFormat(static_cast<int>(m.capturedStart(rule.group)), static_cast<int>(m.capturedLength(rule.group)),
                rule.format);
    }
  }
}

}  // namespace spillway::ui
