#include "ui/theme.h"

#include <QApplication>
#include <QPalette>
#include <QSettings>
#include <QStyle>
#include <QStyleFactory>

namespace spillway::ui {

namespace {

QPalette darkPalette() {
  QPalette p;
  const QColor window(0x2b, 0x2d, 0x30), base(0x1e, 0x1f, 0x22), text(0xdf, 0xe1, 0xe5), mid(0x4e, 0x51, 0x57);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, window);
  p.setColor(QPalette::ToolTipBase, window);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::BrightText, Qt::white);
  p.setColor(QPalette::Mid, mid);
  p.setColor(QPalette::Dark, base);
  p.setColor(QPalette::Link, QColor(0x6c, 0xb6, 0xff));
  p.setColor(QPalette::Highlight, QColor(0x35, 0x74, 0xf0));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::PlaceholderText, QColor(0x8a, 0x8d, 0x93));
  for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText}) {
    p.setColor(QPalette::Disabled, role, QColor(0x7a, 0x7d, 0x83));
  }
  return p;
}

// The platform's style and palette, captured before the first change.
struct Original {
  QString style;
  QPalette palette;
};
const Original& original() {
  static const Original o{QApplication::style()->name(), QApplication::palette()};
  return o;
}

}  // namespace

void applyTheme(Theme theme) {
  const Original& o = original();
  switch (theme) {
    case Theme::kSystem:
      QApplication::setStyle(QStyleFactory::create(o.style));
      QApplication::setPalette(o.palette);
      break;
    case Theme::kLight:
      QApplication::setStyle(QStyleFactory::create("Fusion"));
      QApplication::setPalette(QApplication::style()->standardPalette());
      break;
    case Theme::kDark:
      QApplication::setStyle(QStyleFactory::create("Fusion"));
      QApplication::setPalette(darkPalette());
      break;
  }
}

Theme savedTheme() {
  const QString v = QSettings().value("ui/theme", "system").toString();
  return v == "dark" ? Theme::kDark : v == "light" ? Theme::kLight : Theme::kSystem;
}

void saveTheme(Theme theme) {
  QSettings().setValue("ui/theme", theme == Theme::kDark ? "dark" : theme == Theme::kLight ? "light" : "system");
}

QString themeName(Theme theme) {
  return theme == Theme::kDark ? QObject::tr("Dark") : theme == Theme::kLight ? QObject::tr("Light") : QObject::tr("System");
}

bool paletteIsDark() { return QApplication::palette().color(QPalette::Window).lightness() < 128; }

}  // namespace spillway::ui
